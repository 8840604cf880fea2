"""Extra processes from a Procfile (honcho/foreman format) and their `.env`. Pure parsing.

Procfile: `name: command` per line, `#` comments. `.env`: `KEY=value` per line, optional
`export `, '…' literal, "…" with \\n \\t \\" \\\\ escapes, ` #` comments after unquoted values.
Values are handed to the children only: never printed, never logged.
"""

from __future__ import annotations

import re
from pathlib import Path

from devstack.errors import ConfigError

PROCFILE = "Procfile"
DOTENV = ".env"
_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,31}):\s*(.+?)\s*$")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
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


def parse_dotenv(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGN.match(line)
        if match:
            values[match.group(1)] = _value(match.group(2))
    return values


def _value(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 else raw[1:]
    if raw.startswith('"'):
        out: list[str] = []
        index = 1
        while index < len(raw) and raw[index] != '"':
            char = raw[index]
            if char == "\\" and index + 1 < len(raw):
                index += 1
                char = _ESCAPES.get(raw[index], "\\" + raw[index])
            out.append(char)
            index += 1
        return "".join(out)
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def read_procfile(root: Path) -> dict[str, str]:
    path = root / PROCFILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(PROCFILE, "", f"cannot read: {exc}", "fix or remove the Procfile") from None
    return parse_procfile(text)


def read_dotenv(root: Path) -> dict[str, str]:
    try:
        return parse_dotenv((root / DOTENV).read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(DOTENV, "", f"cannot read: {exc.strerror}", "fix its permissions") from None


def process_names(root: Path) -> list[str]:
    try:
        return list(read_procfile(root))
    except ConfigError:
        return []
