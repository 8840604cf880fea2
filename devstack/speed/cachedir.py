"""devstack's per-user cache folder: $XDG_CACHE_HOME/devstack, else ~/.cache/devstack, and the
reader and writer of its small JSON files (the head start also reads state.json with it).

A string, not a Path: `up --detach`'s head start (speed/headstart.py) reads its record from
here before pathlib is imported."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from devstack.system import trust

_refused: str | None = None  # why the cache folder is not used, said once by `up`


def path(environ: Mapping[str, str] = os.environ) -> str | None:
    """The cache folder, or None: no home, or one another user could write (XDG_CACHE_HOME
    kept by `sudo -E`): devstack then keeps nothing (system/trust.py)."""
    global _refused
    base = environ.get("XDG_CACHE_HOME") or (
        os.path.join(environ["HOME"], ".cache") if environ.get("HOME") else ""
    )
    if not base:
        return None
    folder = os.path.join(base, "devstack")
    untrusted = trust.problem(folder, environ)
    if untrusted is not None:
        _refused = trust.message(folder, untrusted)
        return None
    return folder


def refused() -> str | None:
    """Why the cache folder was not used by this process, if it was not."""
    return _refused


def read_json(path: str) -> Any:
    """A small JSON file of this user's (or root's), never through a symlink planted in its
    place (ELOOP) nor one another user wrote or could write: an OSError, as a missing file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if info.st_uid not in (os.getuid(), 0) or info.st_mode & 0o002:
            raise PermissionError(f"{path}: not written by this user")
        return json.loads(handle.read(1 << 20))


def write_json(path: str, data: Any) -> None:
    """Keep data at path, private to this user (best effort: a cache not written is only a
    slower next time). Replaced atomically; a symlink planted there is refused, never followed."""
    from pathlib import Path  # on the writing side only: readers run before pathlib is imported

    from devstack.errors import DevstackError
    from devstack.system import safefs

    try:
        safefs.ensure_dir(Path(path).parent, 0o700)
        safefs.write_text(Path(path), json.dumps(data), mode=0o600)
    except (OSError, ValueError, DevstackError):
        pass
