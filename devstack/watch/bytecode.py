"""Forget the cached bytecode of an edited module before gunicorn reloads it.

Python trusts a .pyc while it records the source's mtime in whole seconds and its size. Two
saves within one second that keep the size (a one-letter fix, an undo) leave the first save's
.pyc looking valid, and the reloaded worker serves the old code: the stack's famous "my edit
did not change anything", this time for Python. Deleting the edited file's .pyc (a cache the
interpreter rewrites) before the reload makes the worker compile what is on disk.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path


def cached_files(source: Path, pycache_prefix: str | None = None) -> list[Path]:
    """The .pyc files any interpreter may have written for source: every tag (cpython-311,
    cpython-312, .opt-1), in __pycache__ beside it and under PYTHONPYCACHEPREFIX if set."""
    if source.suffix != ".py":
        return []
    name = re.compile(rf"{re.escape(source.stem)}\.[^.]+(\.opt-\d+)?\.pyc")
    folders = [source.parent / "__pycache__"]
    if pycache_prefix:  # the source's absolute folder, re-rooted under the prefix (importlib)
        folders.append(Path(pycache_prefix) / str(source.parent.absolute()).lstrip(os.sep))
    out = []
    for folder in folders:
        with contextlib.suppress(OSError):  # no such folder: nothing cached there
            out += [folder / n for n in os.listdir(folder) if name.fullmatch(n)]
    return sorted(out)


def forget(sources: list[Path], pycache_prefix: str | None = None) -> None:
    """Delete the cached bytecode of sources (best effort: a file already gone is fine)."""
    for source in sources:
        for pyc in cached_files(source, pycache_prefix):
            with contextlib.suppress(OSError):
                pyc.unlink()
