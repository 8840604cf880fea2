"""The CLI called in-process (httpie's `http()` with a MockEnvironment): `devstack(*argv)` runs
cli.run_cli with an Env over in-memory streams and returns (exit, out, err). No subprocess, so
the unit tier can test usage and config errors; anything that would start a stack must not be
run this way (use Project.cli)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from devstack.cli import app as cli
from devstack.system.env import Env

# As tests/support/stack.cli_env: no color, and no venv or gunicorn options from the outer shell.
DROPPED = ("FORCE_COLOR", "GUNICORN_CMD_ARGS", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")


@dataclass(frozen=True)
class Result:
    exit: int
    out: str
    err: str


def _stream() -> TextIO:
    # A text stream with a .buffer, like sys.stdout (`logs` writes bytes to it).
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _text(stream: TextIO | None) -> str:
    assert isinstance(stream, io.TextIOWrapper) and isinstance(stream.buffer, io.BytesIO)
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8")


def mock_env(cwd: Path | None = None, environ: Mapping[str, str] | None = None, tty: bool = False) -> Env:
    base = {k: v for k, v in os.environ.items() if k not in DROPPED}
    base["NO_COLOR"] = "1"
    base.update(environ or {})
    return Env(_stream(), _stream(), stdout_isatty=tty, stderr_isatty=tty, environ=base, cwd=cwd)


def devstack(*argv: str, env: Env | None = None, cwd: Path | None = None) -> Result:
    env = env if env is not None else mock_env(cwd)
    umask = os.umask(0o022)  # `up` tightens the umask of its process: this one is pytest's
    os.umask(umask)
    try:
        code = cli.run_cli(list(argv), env=env)
    finally:
        os.umask(umask)
    return Result(code, _text(env.stdout), _text(env.stderr))
