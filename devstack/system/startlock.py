"""The start lock (.devstack/up.lock): held from the already-running check until the new
supervisor is in state.json, so that two `up` started at once in one project never both pass
the check (the loser says "already running" instead of reporting the winner's stack as its own).

A head start (speed/headstart.py) takes it before it spawns gunicorn, without waiting: a held
lock means another `up` is starting this very stack, and two gunicorns racing for one port
would let the winner's readiness probe be answered by the loser's gunicorn. The lock a head
start took is then handed to `up` (`acquire`), never taken twice: a second flock on a second
descriptor of the same file would wait for ourselves. Released when its descriptor closes.

Imports nothing heavy: the gated head start takes it before devstack's imports.
"""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

NAME = "up.lock"
_held: dict[str, int] = {}  # state dir (real path) -> the lock a head start took for it


def acquire(state_dir: Path) -> int:
    """The start lock of state_dir, waiting for another `up` holding it (or the one this
    process's head start took). Returns its descriptor: closing it releases the lock."""
    from devstack.system import safefs

    held = _held.pop(os.path.realpath(state_dir), None)
    if held is not None:
        return held
    safefs.ensure_dir(state_dir)
    fd = safefs.open_file(state_dir / NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def hold(state_dir: str) -> bool:
    """Take state_dir's start lock now if nobody holds it (kept for `acquire`). False: another
    `up` holds it, or the folder is missing or not ours to write (no head start then)."""
    key = os.path.realpath(state_dir)
    if key in _held:
        return True
    try:
        fd = os.open(
            os.path.join(state_dir, NAME),
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
        )
    except OSError:  # a planted link, a missing folder: `up` itself says so later
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: another `up` is starting this stack
        os.close(fd)
        return False
    _held[key] = fd
    return True


def wait_free(state_dir: Path, timeout: float) -> bool:
    """Wait (up to timeout) until no `up` holds state_dir's start lock: then its supervisor is
    in state.json, or it failed. `down` asks this first, so that a stack still starting is
    stopped instead of reported as "not running" and left to come up. True: free (or no lock)."""
    import time

    try:
        fd = os.open(os.path.join(state_dir, NAME), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # no lock file: no `up` ever ran here, or a planted link (refused elsewhere)
        return True
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.02)
    finally:
        os.close(fd)  # releases the shared lock at once: `down` holds nothing


def release_held() -> None:
    """Release locks taken for a head start that `up` never claimed (it failed first, or the
    head start was for another state dir)."""
    while _held:
        os.close(_held.popitem()[1])
