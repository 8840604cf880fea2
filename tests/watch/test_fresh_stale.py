"""The freshness watcher against nginx configs that really serve stale files or cacheable ones."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from devstack.watch.fresh import StaticWatcher
from tests.support.doctor import nginx, render
from tests.support.stack import EXAMPLE, free_ports, wait_for

pytestmark = pytest.mark.needs_nginx


class Notes:
    """A sink that keeps the watcher's notes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def note(self, source: str, message: str) -> None:
        with self.lock:
            self.lines.append(message)

    def feed(self, source: str, stream: str, data: bytes) -> None: ...
    def end(self, source: str, stream: str) -> None: ...
    def close(self) -> None: ...

    def has(self, text: str) -> bool:
        with self.lock:
            return any(text in line for line in self.lines)


def _watch(static: Path, port: int, notes: Notes) -> StaticWatcher:
    watcher = StaticWatcher(static, f"http://127.0.0.1:{port}", "/static/", notes, polling="never")
    watcher.start()
    return watcher


@pytest.fixture
def static(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE / "static", tmp_path / "static")
    return tmp_path / "static"


def test_stale_copy_from_open_file_cache_is_shouted(static: Path, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    cache = "open_file_cache max=100 inactive=60s;\n    open_file_cache_valid 60s;"
    text = render(tmp_path, port, free_ports(1)[0], static, http_extra=cache)
    notes = Notes()
    with nginx(text, tmp_path / "ngx", port):
        watcher = _watch(static, port, notes)
        try:
            css = static / "css" / "app.css"
            css.write_text("h1 { color: rgb(1, 2, 3); }\n")  # first fetch: nginx caches the fd
            assert wait_for(lambda: notes.has("fresh  css/app.css"), 10), notes.lines
            replacement = css.with_name("app.css.tmp")
            replacement.write_text("h1 { color: rgb(9, 9, 9); }\n")
            os.replace(replacement, css)  # saved by rename: nginx still holds the old inode
            assert wait_for(lambda: notes.has("STALE css/app.css"), 10), notes.lines
            stale = next(line for line in notes.lines if line.startswith("STALE"))
            assert "served " in stale and "!= disk" in stale and "nginx" in stale, stale
        finally:
            watcher.stop()


def test_fresh_but_cacheable_says_so_once(static: Path, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    long_cache = "location /static/ {\n alias STATIC/;\n expires 30d;\n }"
    notes = Notes()
    with nginx(render(tmp_path, port, free_ports(1)[0], static, static=long_cache), tmp_path / "ngx", port):
        watcher = _watch(static, port, notes)
        try:
            for n in range(2):
                (static / "css" / "app.css").write_text(f"p {{ margin: {n}px; }}\n")
                assert wait_for(lambda n=n: sum("fresh  css/app.css" in x for x in notes.lines) > n, 10), (
                    notes.lines
                )
            warnings = [x for x in notes.lines if x.startswith("warning:")]
            assert len(warnings) == 1 and "30 days" in warnings[0], notes.lines
        finally:
            watcher.stop()


def test_a_build_burst_is_verified_file_by_file(static: Path, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    notes = Notes()
    with nginx(render(tmp_path, port, free_ports(1)[0], static), tmp_path / "ngx", port):
        watcher = _watch(static, port, notes)
        try:
            out = static / "dist"
            out.mkdir()
            names = {f"dist/chunk{n:02d}.js" for n in range(20)}
            for name in sorted(names):  # what `npm run build` does
                (static / name).write_text(f"console.log({name!r});\n")

            def verified() -> set[str]:
                return {x.split()[1] for x in notes.lines if x.startswith("fresh  ")}

            assert wait_for(lambda: names <= verified(), 10), notes.lines
            assert not any("STALE" in x for x in notes.lines)
        finally:
            watcher.stop()


def test_static_folder_inside_an_ignored_name_is_still_watched(tmp_path: Path) -> None:
    """Only names inside the static folder are filtered: it may itself live under `venv/`."""
    static = tmp_path / "venv" / "static"
    shutil.copytree(EXAMPLE / "static", static)
    port = free_ports(1)[0]
    notes = Notes()
    with nginx(render(tmp_path, port, free_ports(1)[0], static), tmp_path / "ngx", port):
        watcher = _watch(static, port, notes)
        try:
            (static / "css" / "app.css").write_text("p { margin: 1px; }\n")
            assert wait_for(lambda: notes.has("fresh  css/app.css"), 10), notes.lines
        finally:
            watcher.stop()
