"""Which paths trigger a reload (pure logic of the app watcher; no observer is started)."""

from __future__ import annotations

from pathlib import Path

from devstack.watch.reload import AppWatcher


def make(tmp_path: Path, extra: tuple[str, ...] = ()) -> tuple[AppWatcher, Path]:
    app = tmp_path / "venv" / "node_modules" / "project"  # ignored names ABOVE the app
    (app / "static").mkdir(parents=True)
    return AppWatcher(app, extra, lambda why: None, skip=(app / "static",), polling="never"), app


def test_python_files_inside_an_app_under_ignored_folder_names_reload(tmp_path: Path) -> None:
    watcher, app = make(tmp_path)
    assert watcher.matches(str(app / "app.py"))
    assert watcher.matches(str(app / "pkg" / "views.py"))


def test_ignored_inside_the_app(tmp_path: Path) -> None:
    watcher, app = make(tmp_path, extra=("templates/*.html",))
    assert watcher.matches(str(app / "templates" / "index.html"))
    assert not watcher.matches(str(app / "templates" / "index.css"))
    assert not watcher.matches(str(app / ".venv" / "lib" / "x.py"))
    assert not watcher.matches(str(app / "__pycache__" / "app.cpython-311.pyc"))
    assert not watcher.matches(str(app / ".app.py.swp"))
    assert not watcher.matches(str(app / "static" / "gen.py"))  # the static folder is skipped
    assert not watcher.matches(str(tmp_path / "elsewhere.py"))
