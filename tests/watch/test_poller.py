"""The CPU-cheap polling observer sees creations, in-place edits, renames and deletions."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from devstack.watch.poller import CheapPollingObserver
from tests.support.stack import wait_for


class Recorder(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        with self.lock:
            self.events.append((event.event_type, Path(str(event.src_path)).name))

    def saw(self, kind: str, name: str) -> bool:
        with self.lock:
            return (kind, name) in self.events


def test_poller_reports_changes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    old = tmp_path / "sub" / "a.css"
    old.write_text("a")
    rec = Recorder()
    observer = CheapPollingObserver(timeout=0.05)
    observer.schedule(rec, str(tmp_path), recursive=True)
    observer.start()
    try:
        (tmp_path / "sub" / "b.css").write_text("b")
        assert wait_for(lambda: rec.saw("created", "b.css"))
        old.write_text("a, longer")  # in place: same inode, new size and mtime
        assert wait_for(lambda: rec.saw("modified", "a.css"))
        (tmp_path / "deep").mkdir()
        (tmp_path / "deep" / "c.js").write_text("c")
        assert wait_for(lambda: rec.saw("created", "c.js"))
        tmp = tmp_path / "sub" / "a.css.new"
        tmp.write_text("renamed over")
        os.replace(tmp, old)  # how many editors save
        assert wait_for(
            lambda: (
                (rec.saw("modified", "a.css") and rec.events.count(("modified", "a.css")) >= 2)
                or rec.saw("created", "a.css")
            )
        )
        (tmp_path / "sub" / "b.css").unlink()
        assert wait_for(lambda: rec.saw("deleted", "b.css"))
    finally:
        observer.stop()
        observer.join(timeout=5)
