"""`devstack --help` and `devstack COMMAND --help` from the text typer printed last time.

Importing typer and Click and building every command's options cost ~60 ms, and the help they
print changes only with devstack's code, typer's, the words asked and the terminal's width: all
four are the key of a per-user cache file (speed/cachedir.py). A miss runs the CLI as always, with its
output captured, and keeps the text when it was a help that exited 0. A checkout (not an
installed package) is never cached: its help changes with every edit.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from typing import Any

from devstack import __version__
from devstack.speed import cachedir

FORMAT = 1
HELP_OPTIONS = ("--help", "-h")
HERE = os.path.dirname(os.path.abspath(__file__))  # this package's folder


def asked(args: list[str]) -> bool:
    """args asks for help and for nothing else: `--help`, or `COMMAND --help` (a word that is
    no command makes Click exit 2, and a non-zero exit is never kept)."""
    if len(args) == 1:
        return args[0] in HELP_OPTIONS
    return len(args) == 2 and not args[0].startswith("-") and args[1] in HELP_OPTIONS


def show(args: list[str]) -> int:
    """Print the help args ask for: kept, or made by the CLI now (and kept). Its exit code."""
    key = cache_key(args)
    path = _file(key)
    if path is not None:
        try:
            saved = cachedir.read_json(path)
            if saved.get("key") == key:
                sys.stdout.write(saved["text"])
                return 0
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # none yet, another version's, or broken: made again below
    import io

    from devstack.cli.app import run_cli
    from devstack.system.env import Env

    captured = io.StringIO()
    code = run_cli(args, Env(stdout=captured))
    text = captured.getvalue()
    sys.stdout.write(text)
    if code == 0 and text and key is not None and path is not None:
        cachedir.write_json(path, {"key": key, "text": text})
    return code


def cache_key(args: list[str], here: str = HERE) -> list[Any] | None:
    """What the help text depends on; None: not worth keeping (a checkout, no typer found)."""
    if os.path.basename(os.path.dirname(here)) not in ("site-packages", "dist-packages"):
        return None
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("typer")
    if spec is None or spec.origin is None:
        return None
    try:
        stamps = [os.stat(p).st_mtime_ns for p in (spec.origin, os.path.join(here, "cli/app.py"))]
    except OSError:
        return None
    width = shutil.get_terminal_size().columns  # what Click wraps the help to
    return [FORMAT, __version__, stamps, args, width]


def stale(saved: Any) -> bool:
    """A help another format or devstack version kept (speed/cacheprune.py)."""
    return bool(saved["key"][:2] != [FORMAT, __version__])


def _file(key: list[Any] | None) -> str | None:
    folder = cachedir.path()
    if key is None or folder is None:
        return None
    return os.path.join(folder, f"help-{zlib.crc32(json.dumps(key).encode()):08x}.json")
