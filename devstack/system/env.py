"""The CLI's surroundings, in one object (httpie's Environment): where output goes, whether those
streams are terminals, the color choice, the environment variables and the working folder.

cli.run_cli builds one per call (or takes one: tests pass StringIO streams, see tests/support/cli.py)
and makes it current for that call; system/console.py makes its consoles from the current one, and the
commands write machine-readable output to its stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console


def decide_color(mode: str, environ: Mapping[str, str], isatty: bool) -> bool:
    """An explicit flag wins, then NO_COLOR, then FORCE_COLOR, then TERM=dumb, then the tty."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    if environ.get("TERM") == "dumb":
        return False
    return isatty


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real file
        return False


@dataclass
class Env:
    """Where a command reads and writes: its streams, environment and consoles (tests inject one)."""

    # None: the process's sys.stdout / sys.stderr, looked up at each use (pytest's capture and
    # a forked daemon's redirection both swap or repoint them after the Env is made).
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    # None: ask the stream each time (a forked daemon points fds 1 and 2 at its log file).
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    cwd: Path | None = None  # None: the process's, asked when needed (it may be gone)
    color_mode: str = "auto"
    _consoles: dict[str, Console] = field(default_factory=dict, repr=False)

    def out(self) -> TextIO:
        return self.stdout if self.stdout is not None else sys.stdout

    def err(self) -> TextIO:
        return self.stderr if self.stderr is not None else sys.stderr

    def out_isatty(self) -> bool:
        return self.stdout_isatty if self.stdout_isatty is not None else _isatty(self.out())

    def err_isatty(self) -> bool:
        return self.stderr_isatty if self.stderr_isatty is not None else _isatty(self.err())

    def working_dir(self) -> Path:
        return self.cwd if self.cwd is not None else Path.cwd()

    def color(self, mode: str | None = None, isatty: bool | None = None) -> bool:
        """Color for stdout (or for a stream whose isatty is given) under mode (default: --color)."""
        tty = self.out_isatty() if isatty is None else isatty
        return decide_color(mode or self.color_mode, self.environ, tty)

    def set_color(self, mode: str) -> None:
        self.color_mode = mode
        self._consoles.clear()  # made again, lazily, under the new mode

    def console(self, which: str) -> Console:
        """The rich console for "out" or "err", made on first use: rich costs a third of a
        command's start-up, and `status`, `logs`, `down` print without it."""
        if which not in self._consoles:
            from rich.console import Console

            on_err = which == "err"
            color = self.color(isatty=self.err_isatty() if on_err else self.out_isatty())
            self._consoles[which] = Console(
                file=self.stderr if on_err else self.stdout,  # None: rich follows sys.* itself
                stderr=on_err,
                force_terminal=color,
                no_color=not color,
                highlight=False,
                soft_wrap=True,
            )
        return self._consoles[which]

    def write_json(self, data: Any) -> None:
        stream = self.out()
        stream.write(json.dumps(data, indent=2) + "\n")
        stream.flush()


_current: list[Env] = []


def current() -> Env:
    """The Env of the running CLI call (the process's own outside one)."""
    if not _current:
        _current.append(Env())  # the process's own streams, followed at each use
    return _current[-1]


@contextlib.contextmanager
def using(env: Env) -> Iterator[Env]:
    _current.append(env)
    try:
        yield env
    finally:
        _current.remove(env)
