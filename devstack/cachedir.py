"""devstack's per-user cache folder: $XDG_CACHE_HOME/devstack, else ~/.cache/devstack.

A string, not a Path: `up --detach`'s head start (procs/headstart.py) reads its record from
here before pathlib is imported."""

from __future__ import annotations

import os
from collections.abc import Mapping


def path(environ: Mapping[str, str] = os.environ) -> str | None:
    base = environ.get("XDG_CACHE_HOME") or (
        os.path.join(environ["HOME"], ".cache") if environ.get("HOME") else ""
    )
    return os.path.join(base, "devstack") if base else None
