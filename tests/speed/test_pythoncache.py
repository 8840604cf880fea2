"""The app interpreter's facts are remembered while its sys.path folders are unchanged, and
asked again as soon as one changes (a package installed or removed), for another owner's file,
or for a symlink planted in the cache."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from devstack.project import apppython
from devstack.speed import pythoncache

pytestmark = pytest.mark.unit
PY = sys.executable
FACTS = {"version": "3.11.7", "gunicorn": "23.0.0", "has": ["flask"]}


def test_facts_are_kept_while_the_folders_are_unchanged(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    cache = tmp_path / "cache"
    pythoncache.save(cache, PY, ("flask",), dict(FACTS), [str(site)])
    assert pythoncache.load(cache, PY, ("flask",)) == FACTS
    assert pythoncache.load(cache, PY, ("flask", "gevent")) is None  # another question
    assert pythoncache.load(cache, "/other/python", ("flask",)) is None
    (site / "gevent").mkdir()  # pip install: the folder's mtime moves
    os.utime(site, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert pythoncache.load(cache, PY, ("flask",)) is None
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in cache.iterdir())


def test_foreign_broken_or_planted_files_are_misses(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pythoncache.save(cache, PY, (), dict(FACTS), [])
    (saved,) = cache.iterdir()
    record = json.loads(saved.read_text())
    saved.write_text(json.dumps({**record, "owner": os.getuid() + 1}))
    assert pythoncache.load(cache, PY, ()) is None
    saved.write_text("{not json")
    assert pythoncache.load(cache, PY, ()) is None
    saved.unlink()
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(json.dumps(record))
    saved.symlink_to(elsewhere)
    assert pythoncache.load(cache, PY, ()) is None  # never followed
    pythoncache.save(cache, PY, (), {**FACTS, "has": []}, [])  # refused: never written through
    assert json.loads(elsewhere.read_text()) == record


def test_probe_answers_from_the_cache_then_asks_again_after_a_change(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = apppython.probe(
        PY, "test", own=PY, asker=lambda p, w, o: pythoncache.facts(p, w, o, apppython.ask, cache=cache)
    )
    (saved,) = cache.iterdir()
    record = json.loads(saved.read_text())
    record["facts"]["has"] = ["only-in-the-cache"]
    saved.write_text(json.dumps(record))
    assert apppython.probe(
        PY, "test", own=PY, asker=lambda p, w, o: pythoncache.facts(p, w, o, apppython.ask, cache=cache)
    ).has == {"only-in-the-cache"}
    folder = next(iter(record["stamps"]["dirs"]))
    record["stamps"]["dirs"][folder] -= 1  # as if that folder changed since
    saved.write_text(json.dumps(record))
    assert (
        apppython.probe(
            PY, "test", own=PY, asker=lambda p, w, o: pythoncache.facts(p, w, o, apppython.ask, cache=cache)
        ).has
        == first.has
    )


def test_no_cache_folder_means_asking_every_time(tmp_path: Path) -> None:
    assert pythoncache.cache_dir({}) is None
    assert pythoncache.cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/devstack")
    assert pythoncache.cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "/x"}) == Path("/x/devstack")
    assert (
        apppython.probe(
            PY, "test", own=PY, asker=lambda p, w, o: pythoncache.facts(p, w, o, apppython.ask, cache=None)
        ).version.count(".")
        == 2
    )
