"""Watches devstack.toml while the stack runs: an edit re-plans it (LocalStack.reconfigure).

The folder is watched, not the file: editors save by writing a new file and renaming it over the
old one, which a watch on the file itself would lose after the first save.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from devstack.watch.observers import make_observer

DEBOUNCE = 0.2  # a save is several events (truncate, write, rename): act once, on the result


class ConfigWatcher(FileSystemEventHandler):
    def __init__(
        self, path: Path, on_change: Callable[[], None], polling: str = "auto", baseline: bytes | None = None
    ) -> None:
        """baseline: the bytes the running config was loaded from (Config.source); a file that
        differs from them when the watcher starts (saved while `up` started) is applied at once."""
        self.path = path.resolve()
        self.on_change = on_change
        self.observer, self.kind = make_observer(self.path.parent, polling)
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._last = baseline if baseline is not None else self._snapshot()

    def _snapshot(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or event.is_directory:
            return
        paths = (str(event.src_path), str(getattr(event, "dest_path", "") or ""))
        if str(self.path) not in paths:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            current = self._snapshot()
            # Touching the file, or saving it unchanged, is not a change; a missing file (the
            # middle of a save by rename) waits for the next event.
            if current is None or current == self._last:
                return
            self._last = current
        self.on_change()

    def start(self) -> None:
        self.observer.schedule(self, str(self.path.parent), recursive=False)
        self.observer.start()
        with self._lock:  # saved between the config's read and this watch: no event will come
            current = self._snapshot()
            missed = current is not None and current != self._last
        if missed:
            self._fire()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5.0)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
