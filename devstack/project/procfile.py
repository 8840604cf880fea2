"""Extra processes from a Procfile (honcho/foreman format). Pure parsing.

Procfile: `name: command` per line, `#` comments. Their environment (.env) is project/envfiles.py's.
"""

from __future__ import annotations

import re
from pathlib import Path

from devstack.errors import ConfigError

PROCFILE = "Procfile"
_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,31}):\s*(.+?)\s*$")
# A Procfile's web process is the app itself, which devstack already runs under gunicorn.
SKIPPED = ("web",)


def parse_procfile(text: str, shown: str = PROCFILE) -> dict[str, str]:
    processes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ConfigError(
                shown, f"line {number}", "not `name: command`", "write e.g. `css: npm run watch:css`"
            )
        name, command = match.groups()
        if name in processes:
            raise ConfigError(shown, name, f"defined twice (line {number})", "keep one of them")
        processes[name] = command
    return processes


def read_procfile(root: Path) -> dict[str, str]:
    path = root / PROCFILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(PROCFILE, "", f"cannot read: {exc}", "fix or remove the Procfile") from None
    return parse_procfile(text)


def process_names(root: Path) -> list[str]:
    try:
        return list(read_procfile(root))
    except ConfigError:
        return []
