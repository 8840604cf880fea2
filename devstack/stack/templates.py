"""Finds templates/ (inside the installed package, or at the repository root) and renders them.

A render may keep its result in a cache file (nginx.conf's, in the state dir): the next render
of the same template from the same values reads it back instead of importing jinja2 and
compiling the template, ~40 ms of CPU that every `up` spent while gunicorn boots (on 2 cores,
work beside gunicorn's boot slows it: issue 13).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

_PACKAGE = Path(__file__).resolve().parent.parent  # devstack/


def template_dir() -> Path:
    # A wheel carries them as devstack/templates; a source checkout keeps them at the top.
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if (candidate / "nginx.conf.j2").is_file():
            return candidate
    raise FileNotFoundError("devstack's templates/ folder is missing: reinstall devstack")


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2  # ~20 ms: imported by the first render, off the path to gunicorn's start

    # Loaded once per process and never re-checked (auto_reload off): the templates ship with
    # devstack like its code, and a re-plan (reconfigure) then renders without touching the disk.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # these are config files, not HTML
        auto_reload=False,
    )
    env.filters["nginx_quote"] = nginx_quote
    env.filters["nginx_comment"] = nginx_comment
    return env


def render(name: str, **values: Any) -> str:
    """The template rendered from values."""
    return _environment().get_template(name).render(**values)


def nginx_quote(value: str) -> str:
    """A path as one nginx argument: quoted when it holds a space, ; { } # or a quote (a project
    under "My Projects" made nginx reject the whole config). Plain paths stay as they are."""
    if value and not any(ch.isspace() or ch in ";{}#\"'\\" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nginx_comment(value: str) -> str:
    """A value inside a `#` comment: a newline would end the comment and start directives."""
    return "".join("?" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in str(value))
