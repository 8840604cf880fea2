"""Which cached bytecode an edit makes devstack forget (pure file logic; no process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.watch import bytecode

pytestmark = pytest.mark.unit


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_every_tag_beside_the_source_and_nothing_else(tmp_path: Path) -> None:
    source = touch(tmp_path / "app.py")
    cache = tmp_path / "__pycache__"
    mine = [
        touch(cache / "app.cpython-311.pyc"),
        touch(cache / "app.cpython-312.pyc"),
        touch(cache / "app.cpython-311.opt-1.pyc"),
    ]
    others = [touch(cache / "application.cpython-311.pyc"), touch(cache / "views.cpython-311.pyc")]
    assert bytecode.cached_files(source) == sorted(mine)
    bytecode.forget([source])
    assert [p for p in mine + others if p.exists()] == others


def test_under_a_pycache_prefix(tmp_path: Path) -> None:
    source = touch(tmp_path / "pkg" / "views.py")
    prefix = tmp_path / "prefix"
    pyc = touch(prefix / str(source.parent).lstrip(os.sep) / "views.cpython-311.pyc")
    assert bytecode.cached_files(source, str(prefix)) == [pyc]
    assert bytecode.cached_files(source) == []  # no __pycache__ beside it: nothing, no error


def test_templates_and_missing_files_are_left_alone(tmp_path: Path) -> None:
    html = touch(tmp_path / "templates" / "index.html")
    touch(tmp_path / "templates" / "__pycache__" / "index.cpython-311.pyc")
    assert bytecode.cached_files(html) == []
    bytecode.forget([tmp_path / "gone.py"])  # deleted before the reload: nothing to do
