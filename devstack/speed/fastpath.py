"""The everyday commands (`up`, `status`, `logs`, `down`) parsed without typer's value coercion.

typer >= 0.2x coerces every parameter through a pydantic TypeAdapter: importing pydantic and
building the adapters costs ~0.15 s, twice what `import typer` itself costs, on every command.
These commands run many times a day, so their plain forms are parsed here with the same
options as cli/app.py (cli/plain.py runs them without importing typer at all); anything else
(help, an unknown option, a bad value, `--`) returns None and typer parses it as always, with
its usage errors. tests/speed/test_fastpath.py (a table) and test_fastpath_property.py
(hypothesis, over COMMANDS) check that both paths call the commands with the same arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: `up --detach` forks its daemon before pathlib is imported
    from typing import Any

# option -> (keyword, kind): kind is "flag", "str", "path", "int>=0", "float>=1" or "color"
Options = dict[str, tuple[str, str]]
CONFIG: Options = {"--config": ("config", "path"), "-c": ("config", "path")}
COMMANDS: dict[str, tuple[Options, bool]] = {  # name -> (options, takes NAMES)
    "up": (
        {
            **CONFIG,
            "--detach": ("detach", "flag"),
            "-d": ("detach", "flag"),
            "--vm": ("vm", "flag"),
            "--color": ("color", "color"),
            "--timeout": ("timeout", "float>=1"),
            "--daemon": ("daemon", "flag"),
        },
        False,
    ),
    "status": ({**CONFIG, "--json": ("as_json", "flag")}, False),
    "down": ({**CONFIG, "--halt": ("halt", "flag"), "--destroy": ("destroy", "flag")}, False),
    "logs": (
        {
            **CONFIG,
            "--follow": ("follow", "flag"),
            "-f": ("follow", "flag"),
            "--lines": ("lines", "int>=0"),
            "-n": ("lines", "int>=0"),
            "--since": ("since", "str"),
            "--grep": ("grep", "str"),
            "--json": ("as_json", "flag"),
            "--no-prefix": ("no_prefix", "flag"),
            "--color": ("color", "color"),
        },
        True,
    ),
}
COLORS = ("auto", "always", "never")


def parse(argv: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(command, the values cli/app.py would pass) or None: let typer parse it."""
    if not argv or argv[0] not in COMMANDS:
        return None
    command, rest = argv[0], argv[1:]
    options, takes_names = COMMANDS[command]
    values: dict[str, Any] = {}
    names: list[str] = []
    index = 0
    while index < len(rest):
        token = rest[index]
        index += 1
        if not token.startswith("-") or token == "-":
            if not takes_names:
                return None
            names.append(token)
            continue
        option, has_value, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if option not in options and len(token) > 2 and token[:2] in options:
            option, has_value, value = token[:2], "=", token[2:]  # -n20, like click
        if option not in options:
            return None  # --help, --, a typo: typer says what is wrong
        key, kind = options[option]
        if kind == "flag":
            if has_value:
                return None
            values[key] = True
            continue
        if not has_value:
            if index >= len(rest):
                return None
            value = rest[index]
            index += 1
        converted = _convert(kind, value)
        if converted is None:
            return None
        values[key] = converted
    if takes_names:
        values["names"] = names
    return command, values


def detaches(parsed: tuple[str, dict[str, Any]]) -> bool:
    """A plain local `up --detach`: its daemon forks first (speed/handoff.py)."""
    command, values = parsed
    plain = not values.get("vm") and not values.get("daemon")
    return command == "up" and bool(values.get("detach")) and plain


def _convert(kind: str, value: str) -> object:
    if kind == "path":
        from pathlib import Path

        return Path(value) if value else None
    if kind == "int>=0":
        text = value.strip()
        return int(text) if text.isascii() and text.isdigit() else None  # typer refuses "٣"
    if kind == "float>=1":
        text = value.strip()
        plain = (
            text.isascii() and text.replace(".", "", 1).isdigit()
        )  # no sign, exponent, inf or nan: typer judges those
        return float(text) if plain and float(text) >= 1 else None
    if kind == "color":
        return value if value in COLORS else None
    return value
