"""The app interpreter's facts, remembered while nothing they depend on changed.

Asking an interpreter what it has costs a subprocess (~20 ms for a venv's python, on the path
to gunicorn's start on every `up`); devstack's own costs an importlib.metadata import (~20 ms).
The answer depends only on the interpreter binary and the folders on its sys.path: installing,
upgrading or removing a package changes its site-packages folder's mtime (a new entry, a renamed
dist-info), so the facts are kept with those stamps and used only while every stamp still holds.

Kept per user in devstack's cache folder (speed/cachedir.py), one small JSON file per interpreter
path; a missing, unreadable, foreign or stale file is simply a miss.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devstack.errors import DevstackError
from devstack.speed import cachedir
from devstack.system import safefs

FORMAT = 1


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    folder = cachedir.path(environ)
    return Path(folder) if folder else None


def stamps(python: str, dirs: list[str]) -> dict[str, Any]:
    """What the facts depend on: the interpreter file and every folder on its sys.path."""
    exe = os.stat(python)  # follows the venv's symlink: a rebuilt base interpreter is a change
    out: dict[str, Any] = {"exe": [exe.st_ino, exe.st_size, exe.st_mtime_ns], "dirs": {}}
    for folder in dirs:
        with contextlib.suppress(OSError):
            out["dirs"][folder] = os.stat(folder).st_mtime_ns
    return out


def _key(python: str, probed: tuple[str, ...]) -> list[Any]:
    return [FORMAT, os.path.abspath(python), list(probed)]


def stale(saved: Any) -> bool:
    """Facts no `up` will use again (speed/cacheprune.py): another format or user, or an
    interpreter that is gone."""
    format_, python = saved["key"][:2]
    return format_ != FORMAT or saved["owner"] != os.getuid() or not os.path.exists(python)


def _file(folder: Path, python: str, probed: tuple[str, ...]) -> Path:
    # crc32, not sha256: hashlib's import is ~3 ms on the path to gunicorn's start. The file
    # holds the whole key, so two keys sharing a name only evict each other.
    name = zlib.crc32(json.dumps(_key(python, probed)).encode())
    return folder / f"python-{name:08x}.json"


def load(folder: Path | None, python: str, probed: tuple[str, ...]) -> dict[str, Any] | None:
    """The remembered facts if every stamp still holds, else None."""
    if folder is None:
        return None
    try:
        saved = json.loads(safefs.read_text(_file(folder, python, probed)))
        if saved.get("owner") != os.getuid() or saved.get("key") != _key(python, probed):
            return None
        if stamps(python, list(saved["stamps"]["dirs"])) != saved["stamps"]:
            return None
        facts = saved["facts"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, DevstackError):
        return None  # DevstackError: a symlink planted there (safefs), never followed
    return facts if isinstance(facts, dict) else None


def save(
    folder: Path | None, python: str, probed: tuple[str, ...], facts: dict[str, Any], dirs: list[str]
) -> None:
    """Remember facts (best effort: a read-only home only costs the next `up` the probe again)."""
    if folder is None:
        return
    with contextlib.suppress(OSError, ValueError, DevstackError):
        record = {
            "owner": os.getuid(),
            "key": _key(python, probed),
            "stamps": stamps(python, dirs),
            "facts": facts,
        }
        cachedir.write_json(str(_file(folder, python, probed)), record)


def facts(
    path: str,
    why: str,
    own: str,
    ask: Callable[[str, str, str], dict[str, Any]],
    cache: Path | bool | None = True,
) -> dict[str, Any]:
    """path's facts: remembered while its sys.path folders are unchanged, else ask(path, why, own).
    cache: True for the per-user cache folder, None/False for none, or a folder."""
    from devstack import speed
    from devstack.project.apppython import same
    from devstack.project.pythonprobe import PROBED

    folder = (cache_dir() if cache is True else cache or None) if speed.on("pythoncache") else None
    mine = same(path, own)
    # devstack's own sys.path depends on how it was started (PYTHONPATH, the script's
    # folder): part of the key. The app's is its interpreter's alone (-I).
    key = (*PROBED, *sys.path) if mine else PROBED
    data = load(folder, path, key)
    if data is None:
        data = ask(path, why, own)
        dirs = data.pop("path", [])
        save(folder, path, key, data, dirs)
    return data
