"""Watches the app's code and tells the supervisor to reload gunicorn (HUP) on a change.

devstack's own watcher instead of gunicorn's --reload: one inotify watch set for the whole tree,
works with gevent (gunicorn's inotify engine crashes it), and restarts a gunicorn that died.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
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

    def start(self) -> None:
        self.observer.schedule(self, str(self.app_dir), recursive=True)
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5.0)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
