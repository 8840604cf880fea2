"""`.flaskenv` and `.env`: the environment Flask users expect, parsed by python-dotenv (the parser
Flask's own CLI uses: quoting, multi-line values, `${VAR}` expansion).

Flask's order: `.flaskenv` first, `.env` over it, and a variable already set in the environment
always wins. The values go to gunicorn and the extra processes only: never printed, never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from devstack.errors import ConfigError
from devstack.project.config import check_env

FILES = (".flaskenv", ".env")


def read(root: Path, name: str) -> dict[str, str]:
    """One file's values, `${VAR}` expanded; a missing file is empty."""
    path = root / name
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # only for projects that have one

    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            values = dotenv_values(stream=stream, interpolate=True)
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read: {exc.strerror}", "fix its permissions") from None
    found = {key: value for key, value in values.items() if value is not None}
    # A NUL byte or a value over the kernel's per-string limit would fail the process start
    # (at once, or at gunicorn's next restart): one line naming the file and the variable.
    check_env(found, name, "")
    return found


def load(root: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name in FILES:
        merged.update(read(root, name))
    return {key: value for key, value in merged.items() if key not in environ}
