"""Which paths trigger a reload: the pure logic, then a real inotify watcher on real folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent

from devstack.watch.reload import AppWatcher
from tests.support.stack import wait_for


def make(tmp_path: Path, extra: tuple[str, ...] = ()) -> tuple[AppWatcher, Path]:
    app = tmp_path / "venv" / "node_modules" / "project"  # ignored names ABOVE the app
    (app / "static").mkdir(parents=True)
    return AppWatcher(app, extra, lambda why: None, skip=(app / "static",), polling="never"), app


@pytest.mark.unit
def test_python_files_inside_an_app_under_ignored_folder_names_reload(tmp_path: Path) -> None:
    watcher, app = make(tmp_path)
    assert watcher.matches(str(app / "app.py"))
    assert watcher.matches(str(app / "pkg" / "views.py"))


@pytest.mark.unit
def test_ignored_inside_the_app(tmp_path: Path) -> None:
    watcher, app = make(tmp_path, extra=("templates/*.html",))
    assert watcher.matches(str(app / "templates" / "index.html"))
    assert not watcher.matches(str(app / "templates" / "index.css"))
    assert not watcher.matches(str(app / ".venv" / "lib" / "x.py"))
    assert not watcher.matches(str(app / "__pycache__" / "app.cpython-311.pyc"))
    assert not watcher.matches(str(app / ".app.py.swp"))
    assert not watcher.matches(str(app / "static" / "gen.py"))  # the static folder is skipped
    assert not watcher.matches(str(tmp_path / "elsewhere.py"))


class Seen:
    """The paths the watcher was handed, and the reloads it asked for."""

    def __init__(self, watcher: AppWatcher) -> None:
        self.paths: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.reloads: list[str] = []
        handle = watcher.on_any_event

        def spy(event: FileSystemEvent) -> None:
            self.paths.append(str(event.src_path))
            self.events.append((event.event_type, str(event.src_path)))
            handle(event)

        watcher.on_any_event = spy  # type: ignore[method-assign]
        watcher.on_change = self.reloads.append

    def reloaded(self, name: str) -> bool:
        return wait_for(lambda: any(name in why for why in self.reloads), timeout=5)

    def saw(self, kind: str, path: Path, times: int = 1) -> bool:
        """The watcher was handed `times` events of that kind for path (a folder's creation
        event comes after watchdog has added the folder's inotify watch)."""
        return wait_for(lambda: self.events.count((kind, str(path))) >= times, timeout=5)


def started(app: Path) -> tuple[AppWatcher, Seen]:
    watcher = AppWatcher(app, (), lambda why: None, skip=(app / "static",), polling="never")
    seen = Seen(watcher)
    watcher.start()
    return watcher, seen


def test_the_log_store_is_not_watched(tmp_path: Path) -> None:
    """Every line of every process lands in .devstack/logs: thousands of writes a second that
    must not queue up in front of an edit (inotify drops events once its queue is full)."""
    app = tmp_path / "app"
    (app / ".devstack" / "logs").mkdir(parents=True)
    (app / "static").mkdir()
    (app / "app.py").write_text("x = 1\n")
    watcher, seen = started(app)
    try:
        with open(app / ".devstack" / "logs" / "spam.log", "a") as log:
            for n in range(500):
                log.write(f"line {n}\n")
                log.flush()
        (app / "static" / "gen.py").write_text("x = 1\n")
        (app / "app.py").write_text("x = 2\n")
        assert seen.reloaded("app.py")
        assert not [p for p in seen.paths if ".devstack" in p or "static" in p]
    finally:
        watcher.stop()


def test_folders_made_after_the_start_are_watched(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    watcher, seen = started(app)
    try:
        (app / "pkg").mkdir()
        assert seen.saw("created", app / "pkg")  # its watch is added before the event is handed on
        (app / "pkg" / "views.py").write_text("x = 1\n")
        assert seen.reloaded("views.py")
        ready = tmp_path / "elsewhere" / "blog"  # a folder that arrives whole (a move, a checkout)
        ready.mkdir(parents=True)
        (ready / "models.py").write_text("x = 1\n")
        ready.rename(app / "blog")
        assert seen.reloaded("models.py")
        shutil.rmtree(app / "pkg")  # removed and made again: watched again
        assert seen.saw("deleted", app / "pkg")
        (app / "pkg").mkdir()
        assert seen.saw("created", app / "pkg", times=2)
        (app / "pkg" / "forms.py").write_text("x = 1\n")
        assert seen.reloaded("forms.py")
    finally:
        watcher.stop()
