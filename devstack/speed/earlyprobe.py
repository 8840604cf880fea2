"""The app's interpreter asked for its facts before the config is read.

The answer costs a subprocess of the app's python (~20 ms) when pythoncache.py has none: a
project's first `up`, or the first after a package install. `up` starts it as its first step,
for the interpreter apppython.locate will most likely choose, so it runs while devstack imports
and reads its config instead of after. The answer is used only if it asked the very interpreter
locate chose and succeeded; otherwise apppython asks as always (with its error messages).
"""

from __future__ import annotations

import os
import subprocess

from devstack.project.pythonprobe import PROBED, argv, guess

_early: tuple[str, subprocess.Popen[str]] | None = None
_started = False


def start(config_arg: str | None) -> None:
    """`up`'s first step: ask the likely interpreter now, unless its answer is remembered
    (once per process: `up --detach`'s daemon does it right after forking)."""
    global _started
    if _started:
        return
    _started = True
    from devstack import speed
    from devstack.speed import pythoncache

    python = guess(config_arg)
    if python is None:
        return
    if speed.on("pythoncache") and pythoncache.load(pythoncache.cache_dir(), python, PROBED) is not None:
        return  # remembered: nothing to ask
    ask_early(python)


def ask_early(python: str) -> None:
    """Start asking python now (never raises: a failure only means asking later)."""
    global _early
    discard()
    try:
        proc = subprocess.Popen(
            argv(python),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            close_fds=True,
        )
    except OSError:
        return
    _early = (os.path.normpath(python), proc)


def early_answer(python: str, timeout: float = 30.0) -> str | None:
    """The early answer's output if it asked this interpreter and succeeded, else None."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    asked, proc = early
    if asked != os.path.normpath(python):
        _end(proc)
        return None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end(proc)
        return None
    return out if proc.returncode == 0 else None


def discard() -> None:
    """End an early question nobody took (`up` failed before it needed the answer)."""
    global _early
    early, _early = _early, None
    if early is not None:
        _end(early[1])


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
