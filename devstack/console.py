"""The one place consoles come from, and the color policy (--color, NO_COLOR, FORCE_COLOR)."""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


class ColorMode(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def use_color(mode: ColorMode | str, stream_isatty: bool | None = None) -> bool:
    """Decide color: an explicit flag wins, then NO_COLOR, then FORCE_COLOR, then the tty."""
    mode = ColorMode(mode)
    if mode is ColorMode.always:
        return True
    if mode is ColorMode.never:
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = sys.stdout.isatty() if stream_isatty is None else stream_isatty
    return isatty


_state: dict[str, Console] = {}
_mode: dict[str, ColorMode | str] = {}


def configure(mode: ColorMode | str = ColorMode.auto) -> None:
    """Set the color mode; the consoles are made on first use (rich costs a third of a
    command's start-up, and `status`, `logs`, `down` print without it)."""
    _state.clear()
    _mode["mode"] = mode


def _make() -> None:
    from rich.console import Console

    mode = _mode.get("mode", ColorMode.auto)
    color = use_color(mode)
    _state["out"] = Console(force_terminal=color, no_color=not color, highlight=False, soft_wrap=True)
    _state["err"] = Console(
        stderr=True,
        force_terminal=use_color(mode, sys.stderr.isatty()),
        no_color=not use_color(mode, sys.stderr.isatty()),
        highlight=False,
        soft_wrap=True,
    )


def out() -> Console:
    if "out" not in _state:
        _make()
    return _state["out"]


def err() -> Console:
    if "err" not in _state:
        _make()
    return _state["err"]


def escape(text: str) -> str:
    """rich's markup escape, imported on first use (the paths that print rarely need it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
