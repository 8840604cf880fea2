"""Whose files devstack may act on, as git decides whose repository it works in (safe.directory).

What devstack reads to decide what to run or signal — a devstack.toml found in a parent folder,
the app's interpreter, .devstack/state.json, the per-user cache folder and its files — is used
only if it and every folder holding it belong to the invoking user or root and are not writable
by every user (a sticky folder such as /tmp may be: its other users cannot replace what is ours).
Anything else is one line naming the path, its owner and how to allow it.

Imports nothing heavy: the head start asks it before devstack's own imports.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

ALLOW = "DEVSTACK_SAFE_DIRECTORY"  # folders trusted anyway, ":"-separated; "*" trusts everything


def problem(path: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why path (or a folder holding it) cannot be trusted, or None. A missing path is None:
    there is nothing to trust yet."""
    if _allowed(path, environ):
        return None
    me = os.getuid()
    try:
        info = os.lstat(path)
    except OSError:
        return None
    why = _judge(path, info, me)
    if why is not None:
        return why
    folder = os.path.dirname(os.path.realpath(path))
    while True:
        try:
            why = _judge(folder, os.stat(folder), me)
        except OSError:
            return None
        if why is not None:
            return why
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def message(path: str, why: str) -> str:
    """The one line: what, why, and how to allow it."""
    return (
        f"refusing {path}: {why} — run devstack as that user, fix the ownership or permissions, "
        f"or trust the folder with {ALLOW}={os.path.dirname(os.path.abspath(path))}"
    )


def _judge(path: str, info: os.stat_result, me: int) -> str | None:
    if info.st_uid not in (me, 0):
        return f"it belongs to {_owner(info.st_uid)}, not to you ({_owner(me)})"
    sticky_folder = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
    # a symlink's own mode bits mean nothing (its owner is what counts; the readers refuse links)
    if info.st_mode & stat.S_IWOTH and not sticky_folder and not stat.S_ISLNK(info.st_mode):
        return "it is writable by every user"
    return None


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _allowed(path: str, environ: Mapping[str, str]) -> bool:
    entries = [e for e in environ.get(ALLOW, "").split(":") if e]
    if "*" in entries:
        return True
    real = os.path.realpath(path)
    for entry in entries:
        folder = os.path.realpath(os.path.expanduser(entry))
        if real == folder or real.startswith(folder.rstrip("/") + "/"):
            return True
    return False
