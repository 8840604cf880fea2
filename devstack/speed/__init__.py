"""Start-up speed: every mechanism that exists only to make a command return sooner.

The rest of devstack calls the functions below and imports no module of this package
(tests/test_layers.py). Each mechanism is an optimisation of a path that is correct without it:
`DEVSTACK_SPEED_OFF=name,name` switches it off, which is how benchmarks/bench_up.py --off
measures what it gains (docs/architecture.md, "Start-up speed", has the table).

- fastpath (fastpath.py): plain `up`/`status`/`logs`/`down` parsed without importing typer.
- handoff (handoff.py): `up --detach` forks its daemon before any other import.
- gate (headstart.launch_gated, gunicorn_conf.py): no record, so gunicorn is spawned at once and
  waits on a pipe for the plan's settings.
- planned (headstart.launch_planned): gunicorn spawned the moment the plan exists, before
  nginx.conf is rendered and the supervisor is built.
- pythoncache (pythoncache.py): those facts kept per user until its sys.path folders change.

cachedir.py is the per-user cache folder the record and the python facts live in, and
cacheprune.py keeps it from growing. Imports nothing but os: it runs before everything else.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Mapping

    from devstack.project.config import Config
    from devstack.stack.plan import Plan

GATE = "DEVSTACK_GATE"  # the gated gunicorn's end of its pipe (gunicorn_conf.py reads it)
GATE_RECORD = "gunicorn.gate.json"  # in the state dir: what a gated gunicorn was given (doctor)
NAMES = ("fastpath", "handoff", "gate", "planned", "pythoncache")


def on(name: str) -> bool:
    """Whether a mechanism is on (all are, unless DEVSTACK_SPEED_OFF names it)."""
    return name not in os.environ.get("DEVSTACK_SPEED_OFF", "").split(",")


# -- the command line (__main__.py, cli/) --------------------------------------------------


def parse(argv: list[str]) -> tuple[str, dict[str, Any]] | None:
    """A plainly written `up`/`status`/`logs`/`down` parsed without typer, or None."""
    if not on("fastpath"):
        return None
    from devstack.speed import fastpath

    return fastpath.parse(argv)


def detaches(parsed: tuple[str, dict[str, Any]]) -> bool:
    """A plain local `up --detach`, whose daemon forks off before any other import."""
    from devstack.speed import fastpath

    return on("handoff") and fastpath.detaches(parsed)


def split(config_arg: str | None) -> Callable[[], int] | None:
    """Fork `up --detach`'s daemon: the parent gets the wait for its verdict, the daemon None."""
    from devstack.speed import handoff

    return handoff.split(config_arg)


def before_up(config_arg: str | None, supervises_here: bool) -> None:
    """A foreground `up`'s first step: gunicorn gated, importing while devstack reads its config
    and plans (a detached one's daemon did it at its fork)."""
    from devstack.speed import headstart

    if supervises_here and on("gate"):
        headstart.launch_gated(config_arg)


# -- `up` (commands/up.py, backends/) ------------------------------------------------------


def parent_waits() -> bool:
    """This process is `up --detach`'s daemon and its parent still waits for the verdict."""
    from devstack.speed import handoff

    return handoff.parent_waits()


def release(code: int, error: str = "") -> None:
    """The daemon's verdict to the waiting parent (it exits with code, saying error)."""
    from devstack.speed import handoff

    handoff.release(code, error)


def launch_planned(config: Config, the_plan: Plan, prepare: Callable[[], None]) -> None:
    """Spawn the plan's gunicorn now (through the gate of a gated one when it can become it)."""
    if on("planned"):
        from devstack.speed import headstart

        headstart.launch_planned(config, the_plan, prepare)


def holds(port: int) -> bool:
    """A gunicorn spawned ahead and not yet adopted is bound (or binding) to port."""
    from devstack.speed import headstart

    return headstart.holds(port)


def adopt(
    argv: list[str], cwd: str, env: Mapping[str, str]
) -> tuple[int | None, subprocess.Popen[bytes] | None]:
    """For the supervisor's gunicorn: (the PID of a gunicorn spawned ahead or None, that process
    if it is exactly this child and still running; else None, and it was stopped)."""
    from devstack.speed import headstart

    ahead = headstart.pending()
    return (ahead.proc.pid if ahead is not None else None), headstart.take(argv, cwd, env)


def discard() -> None:
    """`up` failed before it needed them: stop what was started ahead for it."""
    from devstack.speed import headstart

    headstart.discard()


def cache_refused() -> str | None:
    """Why this process kept nothing in the per-user cache folder, if it did not (one line)."""
    from devstack.speed import cachedir

    return cachedir.refused()


def prune() -> None:
    """At most once a day, after ready: the cache folder's stale files go."""
    from devstack.speed import cacheprune

    cacheprune.prune()


# -- planning (stack/) -----------------------------------------------------------------------


def python_facts(path: str, why: str, own: str) -> dict[str, Any]:
    """The app interpreter's facts: remembered, or asked now (apppython.ask)."""
    from devstack.project import apppython
    from devstack.speed import pythoncache

    return pythoncache.facts(path, why, own, apppython.ask)
