"""Keeps devstack's per-user cache folder (speed/cachedir.py) from growing without bound.

Every app interpreter leaves a facts file (speed/pythoncache.py), and devstack 0.1.0 also kept
launch records and help texts (removed since: every such file is stale); nothing removed them,
so a machine that starts many short-lived projects (checkouts, CI, benchmarks) collected
thousands. Once a day at most (a stamp file's mtime), after a stack is ready and off the
supervisor's loop, files are removed whose interpreter is gone, written by another format or
devstack version, unreadable, or temporary files a crash left behind. Each file's owner module
says whether it is stale; anything else in the folder is left alone, and no symlink is followed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable
from typing import Any

from devstack.speed import cachedir, pythoncache

EVERY = 24 * 3600.0  # seconds between two prunes
STAMP = ".pruned"
TMP_AGE = 3600.0  # a temporary file this old was left by a writer that died
KINDS: dict[str, Callable[[Any], bool]] = {
    "launch-": lambda saved: True,  # launch records (devstack <= 0.1.0) held .env values: all go
    "python-": pythoncache.stale,
    "help-": lambda saved: True,  # the help cache of devstack <= 0.1.0 (removed): all stale
}


def prune(folder: str | None = None, now: float | None = None, every: float = EVERY) -> list[str]:
    """Remove stale files from the cache folder if the last prune is `every` seconds old.
    Returns the names removed. Never raises: a cache that cannot be pruned is only bigger."""
    folder = folder if folder is not None else cachedir.path()
    now = time.time() if now is None else now
    if folder is None or not _due(folder, now, every):
        return []
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if _stale(folder, entry, now):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, entry.name))
                    removed.append(entry.name)
    return removed


def _due(folder: str, now: float, every: float) -> bool:
    """True (and the stamp renewed) if no prune ran in the last `every` seconds."""
    stamp = os.path.join(folder, STAMP)
    try:
        info = os.lstat(stamp)
        if not stat.S_ISREG(info.st_mode):
            return False  # not ours: leave the folder alone
        if now - info.st_mtime < every:
            return False
        os.utime(stamp, (now, now), follow_symlinks=False)
    except FileNotFoundError:
        try:
            os.close(os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            os.utime(stamp, (now, now), follow_symlinks=False)
        except OSError:  # no folder yet, read-only, or another prune was first
            return False
    except OSError:
        return False
    return True


def _stale(folder: str, entry: os.DirEntry[str], now: float) -> bool:
    if not entry.is_file(follow_symlinks=False):
        return False
    name = entry.name
    if name.startswith(".") and ".tmp." in name:  # safefs.write_text's, left by a crash
        return now - entry.stat(follow_symlinks=False).st_mtime > TMP_AGE
    check = next((test for prefix, test in KINDS.items() if name.startswith(prefix)), None)
    if check is None or not name.endswith(".json"):
        return False
    try:
        saved = cachedir.read_json(os.path.join(folder, name))
    except FileNotFoundError:
        return False  # removed meanwhile (another prune)
    except (OSError, ValueError):
        return True  # unreadable or broken: its reader treats it as a miss anyway
    try:
        return check(saved)
    except (KeyError, TypeError, IndexError, AttributeError):
        return True  # not the shape its reader expects
