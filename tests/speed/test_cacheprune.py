"""The per-user cache folder is pruned (speed/cacheprune.py): every launch record and help text
an older devstack kept, facts of interpreters that are gone, foreign formats, broken files and a crash's
temporary files go; the rest, anything not ours and anything behind a symlink stay. At most
once a day; a real `up` prunes after it is ready."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from devstack import __version__
from devstack.speed import cacheprune, pythoncache
from tests.support.stack import Project, cli_env

DAY = 24 * 3600.0


def launch_record(cache: Path, project_folder: Path, version: str = __version__) -> Path:
    """A launch record of devstack <= 0.1.0 (removed: it held .env values at rest)."""
    key = [2, version, os.getuid(), str(project_folder), ""]
    path = cache / f"launch-{abs(hash((str(project_folder), version))) % 10**8:08d}.json"
    path.write_text(json.dumps({"key": key, "argv": ["gunicorn"], "env": {"SECRET": "x"}}))
    return path


def help_text(cache: Path, version: str = __version__) -> Path:
    key = [1, version, [1, 2], ["--help"], 80]  # the help cache's files (removed in 0.1.0)
    path = cache / f"help-{abs(hash(version)) % 10**8:08d}.json"
    path.write_text(json.dumps({"key": key, "text": "Usage: devstack"}))
    return path


def python_facts(cache: Path, python: str) -> Path:
    path = pythoncache._file(cache, python, ("gunicorn",))
    key = pythoncache._key(python, ("gunicorn",))
    path.write_text(json.dumps({"owner": os.getuid(), "key": key, "stamps": {}, "facts": {}}))
    return path


@pytest.mark.unit
def test_stale_files_go_and_the_rest_stay(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    here, gone = tmp_path / "project", tmp_path / "deleted-project"
    here.mkdir()
    keep = {
        python_facts(cache, sys.executable),
        cache / "notes.txt",  # not ours to judge
    }
    (cache / "notes.txt").write_text("mine")
    drop = {
        launch_record(cache, here),  # every launch record goes, its project there or not
        launch_record(cache, gone),
        python_facts(cache, str(tmp_path / "old-venv" / "bin" / "python")),
        cache / "launch-0000beef.json",  # broken
        help_text(cache),  # the help cache is gone: every help file of it is stale
        help_text(cache, version="0.0.1"),
    }
    (cache / "launch-0000beef.json").write_text("{not json")
    older = here / "second"
    older.mkdir()
    drop.add(launch_record(cache, older, version="0.0.1"))  # an older devstack's record
    crashed = cache / ".python-00000000.json.tmp.12345"
    crashed.write_text("{")
    os.utime(crashed, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    drop.add(crashed)
    fresh_tmp = cache / ".launch-00000001.json.tmp.999"  # a writer still at work
    fresh_tmp.write_text("{")
    keep.add(fresh_tmp)
    outside = tmp_path / "outside.json"  # a planted link: neither followed nor removed
    outside.write_text("{")
    (cache / "launch-11111111.json").symlink_to(outside)
    keep.add(cache / "launch-11111111.json")

    now = time.time()
    removed = cacheprune.prune(str(cache), now=now)
    assert sorted(removed) == sorted(p.name for p in drop)
    assert all(p.exists() or p.is_symlink() for p in keep) and not any(p.exists() for p in drop)
    assert outside.read_text() == "{"

    # Once a day: a stale file written now waits for tomorrow's prune.
    late = launch_record(cache, gone)
    assert cacheprune.prune(str(cache), now=now + 60) == []
    assert late.exists()
    tomorrow = cacheprune.prune(str(cache), now=now + DAY + 1)
    assert sorted(tomorrow) == sorted([late.name, fresh_tmp.name])  # that writer died too


@pytest.mark.unit
def test_no_cache_folder_or_a_foreign_stamp_is_left_alone(tmp_path: Path) -> None:
    assert cacheprune.prune(str(tmp_path / "missing")) == []
    assert not (tmp_path / "missing").exists()
    cache = tmp_path / "cache"
    cache.mkdir()
    broken = cache / "launch-0000beef.json"
    broken.write_text("{")
    (cache / cacheprune.STAMP).symlink_to(tmp_path / "elsewhere")
    assert cacheprune.prune(str(cache)) == []
    assert broken.exists() and not (tmp_path / "elsewhere").exists()


@pytest.mark.needs_nginx
def test_a_ready_up_prunes_the_cache(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "devstack").mkdir(parents=True)
    stale = launch_record(cache / "devstack", project.root)  # an older devstack's, with a secret
    done = project.cli("up", "--detach", env=cli_env(XDG_CACHE_HOME=str(cache)))
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10  # pruned by the readiness thread, just after "ready"
    while stale.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not stale.exists()
    assert (cache / "devstack" / cacheprune.STAMP).exists()
    assert not list((cache / "devstack").glob("launch-*.json"))  # and none is written any more
