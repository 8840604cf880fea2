"""The one door for short-lived commands (`nginx -t`, `nginx -T`, a python probe, and later vagrant,
ssh, rsync): run to completion, capture text, never raise for the command's own failure.

A missing binary comes back as code 127 and a timeout as code 124, each with a one-line message
in `err`, the way a shell reports them (pre-commit's `cmd_output` does the same). Why a code and
not an exception: every caller already branches on the exit code and shows the first error line,
so "nginx: not found" flows through unchanged; the callers that must stop (the app's python)
raise their own DevstackError, naming what they needed it for. `Child` stays the one long-lived
Popen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

NOT_FOUND = 127  # the shell's codes: no such command / could not execute / timed out
CANNOT_EXECUTE = 126
TIMED_OUT = 124


@dataclass(frozen=True)
class Completed:
    """A short command's outcome: exit code (127/124/126 for missing/timeout/cannot run) and output."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def first_error(self, *markers: str) -> str:
        """The first stderr line holding one of markers (else the first line): the why."""
        lines = self.err.strip().splitlines()
        marked = [ln for ln in lines if any(m in ln for m in markers)]
        return str((marked or lines or ["no output"])[0]).strip()


class Run(Protocol):
    """The runner's signature: what callers accept, so a unit test hands them a fake."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Completed: ...


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: str | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    spawn: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> Completed:
    """Run argv to completion (env, when given, is the whole environment, as for subprocess)."""
    name = str(argv[0])
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    if shutil.which(name, path=search) is None:
        return Completed(NOT_FOUND, "", f"{name}: command not found{_where(name, search)}")
    kwargs: dict[str, Any] = {"capture_output": True, "text": True, "errors": "replace"}
    try:
        done = spawn(
            [str(a) for a in argv],
            input=input,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
            **kwargs,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed it already
        return Completed(TIMED_OUT, "", f"{name}: no answer within {timeout:g} s (stopped)")
    except OSError as exc:  # found but not runnable: permissions, a bad interpreter line, cwd
        where = f" in {cwd}" if cwd is not None and not Path(cwd).is_dir() else ""
        return Completed(CANNOT_EXECUTE, "", f"{name}: cannot run{where}: {exc.strerror or exc}")
    return Completed(done.returncode, done.stdout or "", done.stderr or "")


def _where(name: str, search: str) -> str:
    if os.sep in name:
        return " (no executable file there)"
    return " (not on PATH)" if search else " (PATH is empty)"
