"""Watches the app's code and tells the supervisor to reload gunicorn (HUP) on a change.

devstack's own watcher instead of gunicorn's --reload: one inotify watch set for the whole tree,
works with gevent (gunicorn's inotify engine crashes it), and restarts a gunicorn that died.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import FileCreatedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import ObservedWatch
from watchdog.observers.polling import PollingObserverVFS

from devstack.watch import bytecode
from devstack.watch.observers import IGNORED_DIRS, ignored, make_observer

POLL_INTERVAL = 0.25
DEBOUNCE = 0.03  # editors save in bursts (write, rename, chmod): one reload per burst


def _pruned_scandir(skip: tuple[Path, ...]) -> Callable[[str | None], Iterator[os.DirEntry[str]]]:
    skipped = {str(p) for p in skip}

    def listdir(path: str | None) -> Iterator[os.DirEntry[str]]:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name in IGNORED_DIRS or entry.path in skipped:
                    continue
                yield entry

    return listdir


class AppWatcher(FileSystemEventHandler):
    def __init__(
        self,
        app_dir: Path,
        extra: tuple[str, ...],
        on_change: Callable[[str], None],
        skip: tuple[Path, ...] = (),
        polling: str = "auto",
        on_edit: Callable[[str], None] | None = None,
        pycache_prefix: str | None = None,
    ) -> None:
        self.app_dir = app_dir.resolve()
        self.patterns = ("*.py", *extra)
        self.skip = tuple(p.resolve() for p in skip)
        self.on_change = on_change
        # Told first, before the reload starts (live reload: the tabs reload once it serves).
        self.on_edit = on_edit
        self.pycache_prefix = pycache_prefix  # gunicorn's PYTHONPYCACHEPREFIX, if it has one
        self.observer, self.kind = make_observer(self.app_dir, polling)
        if self.kind == "polling":
            # A polling observer stats the whole tree every interval: leave out what can never
            # trigger a reload (the static folder, which may hold 100,000 files, .git, venvs),
            # and do not follow symlinks (a link to ".." would be walked again and again).
            self.observer = PollingObserverVFS(
                os.lstat, _pruned_scandir(self.skip), polling_interval=POLL_INTERVAL
            )
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._watches: dict[str, ObservedWatch] = {}  # the app folder's subfolders, when inotify

    def matches(self, path: str) -> bool:
        p = Path(path)
        if any(p == s or s in p.parents for s in self.skip):
            return False
        try:
            rel = p.resolve().relative_to(self.app_dir).as_posix()
        except ValueError:
            return False
        # Only the part inside the app counts: a project that itself lives under a folder
        # named venv or node_modules must still reload.
        if ignored(rel):
            return False
        return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(p.name, pat) for pat in self.patterns)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory and self.kind == "inotify":
            self._follow_top_level(event)
        if event.event_type in ("opened", "closed_no_write") or event.is_directory:
            return
        paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
        hits = [p for p in paths if p and self.matches(p)]
        if not hits:
            return
        with self._lock:
            self._changed.update(hits)
            if self._timer is None:
                self._timer = threading.Timer(DEBOUNCE, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            changed, self._changed, self._timer = self._changed, set(), None
        # Before the reload: a same-size save within the second would load the old .pyc.
        bytecode.forget([Path(p) for p in changed], self.pycache_prefix)
        names = sorted(Path(p).name for p in changed)
        why = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
        if self.on_edit is not None:
            self.on_edit(why)
        self.on_change(why)

    def _excluded(self, folder: Path) -> bool:
        return folder.name in IGNORED_DIRS or folder in self.skip

    def _watch(self, folder: Path) -> None:
        with self._lock:
            if str(folder) not in self._watches:
                self._watches[str(folder)] = self.observer.schedule(self, str(folder), recursive=True)

    def _top_level(self, path: object) -> Path | None:
        folder = Path(str(path)) if path else None
        if folder is None or folder.parent != self.app_dir or self._excluded(folder):
            return None
        return folder

    def _follow_top_level(self, event: FileSystemEvent) -> None:
        """A folder made or removed right in the app folder gains or loses its watch; a made
        one that already holds code (a checkout, a move) counts as an edit of it."""
        kind = event.event_type
        gone = [event.src_path] if kind in ("deleted", "moved") else []
        made = [event.src_path] if kind == "created" else []
        if kind == "moved":
            made.append(event.dest_path)
        for folder in filter(None, map(self._top_level, gone)):
            with self._lock:
                watch = self._watches.pop(str(folder), None)
            if watch is not None:
                with contextlib.suppress(KeyError, OSError):
                    self.observer.unschedule(watch)
        for folder in filter(None, map(self._top_level, made)):
            if folder.is_dir():
                self._watch(folder)
                for found in folder.rglob("*.py"):
                    self.on_any_event(FileCreatedEvent(str(found)))

    def start(self) -> None:
        if self.kind == "polling":  # the pruned scandir already leaves these folders out
            self.observer.schedule(self, str(self.app_dir), recursive=True)
        else:
            # Not one recursive watch of the app folder: it holds .devstack, whose log store
            # takes every line of every process (thousands of writes a second), and inotify
            # would hand each write to this watcher. The app folder itself, then each of its
            # folders but the ignored ones, the static folder and the state folder.
            self.observer.schedule(self, str(self.app_dir), recursive=False)
            with os.scandir(self.app_dir) as entries:
                folders = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
            for folder in folders:
                if not self._excluded(folder):
                    self._watch(folder)
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5.0)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
