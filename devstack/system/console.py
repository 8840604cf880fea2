"""Where the consoles come from (the current Env, devstack/system/env.py), and the color policy
(--color, NO_COLOR, FORCE_COLOR, TERM=dumb, the tty)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from devstack.system import env as env_mod

if TYPE_CHECKING:
    from rich.console import Console


class ColorMode(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def use_color(mode: ColorMode | str, stream_isatty: bool | None = None) -> bool:
    """Decide color for the current Env's stdout (or a stream whose isatty is given)."""
    return env_mod.current().color(ColorMode(mode).value, stream_isatty)


def configure(mode: ColorMode | str = ColorMode.auto) -> None:
    """Set the color mode of the current Env; its consoles are made again on first use."""
    env_mod.current().set_color(ColorMode(mode).value)


def out() -> Console:
    return env_mod.current().console("out")


def err() -> Console:
    return env_mod.current().console("err")


def escape(text: str) -> str:
    """rich's markup escape, imported on first use (the paths that print rarely need it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
