"""A CPU-cheap polling observer for shared folders (vboxsf, nfs, 9p, fuse), where inotify is blind.

watchdog's PollingObserver snapshots the whole tree every interval and diffs two snapshots
(~7 % of a core on 10,000 files). This one keeps one (mtime, size) pair per file and spreads the
work over time:
- every tick: stat each directory (a create, delete or rename changes its mtime; editors that
  save by rename are seen at once) and the "hot" files edited lately (the dev loop: the same few
  files again and again);
- every tick also a slice of the other files, so each file is stat-ed once per `sweep` seconds.
An in-place edit of a cold file is seen within `sweep` seconds, of a hot file within a tick.
"""

from __future__ import annotations

import os
import stat
import time
from collections import OrderedDict
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
)
from watchdog.observers.api import BaseObserver, EventEmitter

TICK = 0.25  # seconds between ticks
SWEEP = 2.0  # every file is stat-ed at least this often
HOT_MAX = 256  # files remembered as recently edited
HOT_FOR = 600.0  # seconds a file stays hot after an edit

Sig = tuple[int, int]  # (st_mtime_ns, st_size)


def _sig(st: os.stat_result) -> Sig:
    return (st.st_mtime_ns, st.st_size)


class CheapPollingEmitter(EventEmitter):
    def __init__(
        self,
        event_queue: Any,
        watch: Any,
        timeout: float = TICK,
        event_filter: Any = None,
        sweep: float = SWEEP,
    ) -> None:
        super().__init__(event_queue, watch, timeout=timeout, event_filter=event_filter)
        self.tick = float(timeout)
        self.slices = max(1, round(sweep / self.tick))
        self.dirs: dict[str, Sig] = {}
        self.files: dict[str, Sig] = {}
        self.order: list[str] = []  # files in sweep order; rebuilt when the set changes
        self.cursor = 0
        self.hot: OrderedDict[str, float] = OrderedDict()

    # -- tree bookkeeping -------------------------------------------------------------------------
    def _scan_dir(self, folder: str, emit: bool) -> None:
        """List one folder: record new files and subfolders (recursively); emit creations."""
        try:
            self.dirs[folder] = _sig(os.stat(folder))
            entries = list(os.scandir(folder))
        except OSError:
            return
        present = set()
        for entry in entries:
            present.add(entry.path)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.path not in self.dirs and self.watch.is_recursive:
                    if emit:
                        self.queue_event(DirCreatedEvent(entry.path))
                    self._scan_dir(entry.path, emit)
            elif entry.path not in self.files:
                self.files[entry.path] = _sig(st)
                self.order.append(entry.path)
                if emit:
                    self.queue_event(FileCreatedEvent(entry.path))
                    self._heat(entry.path)
        # Entries that were in this folder and are gone now.
        prefix = folder.rstrip(os.sep) + os.sep

        def child(path: str) -> bool:
            return path.startswith(prefix) and os.sep not in path[len(prefix) :]

        for path in [p for p in self.files if child(p)]:
            if path not in present:
                self._forget_file(path, emit)
        for path in [p for p in self.dirs if child(p)]:
            if path not in present:
                self._forget_dir(path, emit)

    def _forget_file(self, path: str, emit: bool) -> None:
        self.files.pop(path, None)
        self.hot.pop(path, None)  # self.order is pruned lazily at the end of a sweep
        if emit:
            self.queue_event(FileDeletedEvent(path))

    def _forget_dir(self, folder: str, emit: bool) -> None:
        prefix = folder.rstrip(os.sep) + os.sep
        for path in [p for p in self.files if p.startswith(prefix)]:
            self._forget_file(path, emit)
        for path in [p for p in self.dirs if p.startswith(prefix)]:
            self.dirs.pop(path, None)
        self.dirs.pop(folder, None)
        if emit:
            self.queue_event(DirDeletedEvent(folder))

    def _heat(self, path: str) -> None:
        self.hot[path] = time.monotonic()
        self.hot.move_to_end(path)
        while len(self.hot) > HOT_MAX:
            self.hot.popitem(last=False)

    def _check_file(self, path: str) -> None:
        try:
            sig = _sig(os.stat(path))
        except OSError:
            return  # gone: its folder's mtime changed too, the folder pass reports it
        if self.files.get(path) != sig:
            self.files[path] = sig
            self._heat(path)
            self.queue_event(FileModifiedEvent(path))

    # -- the emitter loop -------------------------------------------------------------------------
    def on_thread_start(self) -> None:
        self._scan_dir(str(self.watch.path), emit=False)

    def queue_events(self, timeout: float) -> None:
        if self.stopped_event.wait(timeout):
            return
        for folder, sig in list(self.dirs.items()):
            try:
                now = _sig(os.stat(folder))
            except OSError:
                if folder == str(self.watch.path):
                    continue
                self._forget_dir(folder, emit=True)
                continue
            if now != sig:
                self._scan_dir(folder, emit=True)
        cutoff = time.monotonic() - HOT_FOR
        for path, since in list(self.hot.items()):
            if since < cutoff:
                self.hot.pop(path, None)
            else:
                self._check_file(path)
        # One slice of the full sweep.
        if self.order:
            size = -(-len(self.order) // self.slices)  # ceil
            end = min(self.cursor + size, len(self.order))
            for path in self.order[self.cursor : end]:
                if path in self.files and path not in self.hot:
                    self._check_file(path)
            self.cursor = 0 if end >= len(self.order) else end
            if self.cursor == 0 and len(self.order) != len(self.files):
                self.order = list(self.files)


class CheapPollingObserver(BaseObserver):
    def __init__(self, timeout: float = TICK) -> None:
        super().__init__(CheapPollingEmitter, timeout=timeout)
