"""Which Python runs the app, and what that Python has installed.

devstack is installed like a CLI (pipx, `uv tool install`), in a venv of its own that holds none
of the app's packages; the app lives in ITS venv. gunicorn, its worker and every "is X
importable" check therefore run in the app's interpreter, found in this order:

1. `app.python` in devstack.toml (relative to the project root);
2. `$VIRTUAL_ENV` (an activated venv);
3. `.venv/` or `venv/` in the project root (uv, poetry in-project, `python -m venv .venv`);
   `$UV_PROJECT_ENVIRONMENT` when uv is told to keep it elsewhere;
4. devstack's own interpreter (devstack and the app installed together).

The facts are asked of that interpreter in one subprocess (~20 ms); for devstack's own they
are read in-process; either answer is remembered
while its sys.path folders stay unchanged (speed/pythoncache.py). gunicorn_conf.py runs in the
app's interpreter and never imports devstack.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.errors import ConfigError, DevstackError
from devstack.project import pythonprobe
from devstack.project.config import Config
from devstack.project.pythonprobe import PROBED
from devstack.system import runner, trust


@dataclass(frozen=True)
class AppPython:
    """The interpreter that runs the app, why it was chosen, and what it has installed."""

    path: str
    why: str  # how it was chosen, as `up` and `status` say it
    version: str
    gunicorn: tuple[int, ...] | None
    has: frozenset[str]
    versions: Mapping[str, str] = field(default_factory=dict)  # distribution -> version (VERSIONED)

    @property
    def gunicorn_shown(self) -> str:
        return ".".join(map(str, self.gunicorn)) if self.gunicorn else "not installed"

    def importable(self, module: str) -> bool:
        return module in self.has

    def install_hint(self, *packages: str) -> str:
        """The exact command that installs packages into this interpreter."""
        quoted = " ".join(f"'{p}'" if any(c in p for c in "<>=[") else p for p in packages)
        return f"{self.path} -m pip install {quoted}"


def locate(
    config: Config,
    environ: Mapping[str, str] = os.environ,
    own: str = sys.executable,
    is_file: Callable[[Path], bool] = Path.is_file,
) -> tuple[str, str]:
    """(interpreter path, why) — pure apart from is_file, which the unit tests replace."""
    if config.app.python:
        chosen = Path(config.app.python).expanduser()
        chosen = chosen if chosen.is_absolute() else config.root / chosen
        if not is_file(chosen):
            raise ConfigError(
                str(config.path.name),
                "app.python",
                f"{chosen} does not exist",
                "point it at your venv's python (e.g. .venv/bin/python), or remove it to find one",
            )
        return str(chosen), f"app.python in {config.path.name}"
    for path, why in pythonprobe.candidates(str(config.root), environ):  # one order for both
        if is_file(Path(path)):
            return path, why
    return own, "devstack's own: no app.python, $VIRTUAL_ENV, .venv/ or venv/"


Ask = Callable[[str, str, str], dict[str, Any]]  # (path, why, own) -> facts, as ask() returns


def ask(path: str, why: str, own: str = sys.executable) -> dict[str, Any]:
    """The interpreter's facts, asked now: in-process for devstack's own, else a subprocess
    of it (pythonprobe.py's question). "path" in them: its sys.path folders."""
    if _same(path, own):
        return _in_process()
    result = runner.run(pythonprobe.argv(path), timeout=30)
    if result.code in (runner.NOT_FOUND, runner.CANNOT_EXECUTE, runner.TIMED_OUT):
        raise DevstackError(f"cannot run the app's python {path} ({why}): {result.err}")
    if not result.ok:
        last = (result.err.strip().splitlines() or ["no output"])[-1]
        raise DevstackError(f"the app's python {path} ({why}) does not run: {last}")
    data: dict[str, Any] = json.loads(result.out)
    return data


def probe(path: str, why: str, own: str = sys.executable, asker: Ask = ask) -> AppPython:
    """The interpreter's facts as an AppPython; asker: how they are had (stack/facts.py passes
    the remembered ones, speed/pythoncache.py). An interpreter another user could have put
    there is never run (system/trust.py)."""
    untrusted = trust.problem(path)
    if untrusted is not None:
        raise DevstackError(trust.message(path, f"{untrusted} ({why})"))
    data = asker(path, why, own)
    return AppPython(
        path,
        why,
        data["version"],
        parse_version(data["gunicorn"]),
        frozenset(data["has"]),
        data.get("versions", {}),
    )


def find(config: Config, python: str | None = None, asker: Ask = ask) -> AppPython:
    """The app's interpreter and its facts; `python` forces one (the VM agent: its own venv)."""
    if python:
        return probe(python, "given", asker=asker)
    return probe(*locate(config), asker=asker)


def same(path: str, own: str) -> bool:
    """Whether path is devstack's own interpreter (own)."""
    return _same(path, own)


def _same(path: str, own: str) -> bool:
    # Never samefile(): every venv's bin/python is a symlink to the same base interpreter.
    return os.path.abspath(path) == os.path.abspath(own)


def own_gunicorn() -> tuple[int, ...] | None:
    """gunicorn's version in devstack's own interpreter."""
    return parse_version(_own_gunicorn_raw())


def _own_gunicorn_raw() -> str | None:
    from importlib import metadata  # ~20 ms: only when the cache has no answer

    try:
        return metadata.version("gunicorn")
    except metadata.PackageNotFoundError:
        return None


def _in_process() -> dict[str, Any]:
    return {
        "version": "{}.{}.{}".format(*sys.version_info[:3]),
        "gunicorn": _own_gunicorn_raw(),
        "has": [m for m in PROBED if importlib.util.find_spec(m) is not None],
        "versions": _own_versions(),
        "path": [p for p in sys.path if os.path.isdir(p)],
    }


def _own_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for dist in pythonprobe.VERSIONED.values():
        name = dist.replace("_", "-")
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def parse_version(raw: str | None) -> tuple[int, ...] | None:
    """ "27.0.1" -> (27, 0, 1); up to three numeric pieces, None when there is none (doctor reads
    versions from gunicorn's output the same way)."""
    parts: list[int] = []
    for piece in (raw or "").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None
