"""devstack's per-user cache folder: $XDG_CACHE_HOME/devstack, else ~/.cache/devstack, and the
reader and writer of its small JSON files (the head start also reads state.json with it).

A string, not a Path: `up --detach`'s head start (speed/headstart.py) reads its record from
here before pathlib is imported."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any


def path(environ: Mapping[str, str] = os.environ) -> str | None:
    base = environ.get("XDG_CACHE_HOME") or (
        os.path.join(environ["HOME"], ".cache") if environ.get("HOME") else ""
    )
    return os.path.join(base, "devstack") if base else None


def read_json(path: str) -> Any:
    """A small JSON file, never through a symlink planted in its place (ELOOP: an OSError)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
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
