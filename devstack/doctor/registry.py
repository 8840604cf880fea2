"""The registry: checks register themselves by stable ID; doctor selects them by ID or glob."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from devstack.doctor.context import Context
from devstack.doctor.model import SEVERITIES, CheckSpec, Outcome

REGISTRY: dict[str, CheckSpec] = {}
AREAS = ("static", "nginx", "socketio", "gunicorn", "procs", "net")


def check(
    id: str, title: str, severity: str, fix: str, refs: tuple[str, ...] = ()
) -> Callable[[Callable[[Context], Outcome]], Callable[[Context], Outcome]]:
    area = id.split(".", 1)[0]
    assert area in AREAS and severity in SEVERITIES and id not in REGISTRY, id

    def register(fn: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        REGISTRY[id] = CheckSpec(id, area, title, severity, fix, fn, refs)
        return fn

    return register


def load_all() -> dict[str, CheckSpec]:
    # Importing the modules runs their @check decorators.
    from devstack.doctor.checks import browser, gunicorn, net, nginx, nodes, procs, socketio, static  # noqa: F401

    return REGISTRY


def select(patterns: list[str]) -> tuple[list[CheckSpec], list[str]]:
    """Checks matching any pattern (an ID, an area, or a glob); unknown patterns returned."""
    checks = load_all()
    if not patterns:
        return sorted(checks.values(), key=_order), []
    chosen: list[CheckSpec] = []
    unknown = []
    for pattern in patterns:
        hits = [
            c
            for c in checks.values()
            if c.id == pattern or c.area == pattern or fnmatch.fnmatch(c.id, pattern)
        ]
        if not hits:
            unknown.append(pattern)
        chosen.extend(h for h in hits if h not in chosen)
    return sorted(chosen, key=_order), unknown


def _order(spec: CheckSpec) -> tuple[int, int]:
    return AREAS.index(spec.area), list(REGISTRY).index(spec.id)
