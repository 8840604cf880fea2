"""The everyday commands run from the fast path's parse (speed.parse), without typer.

`up`, `status`, `logs` and `down` written plainly are parsed by speed/fastpath.py with the same
options as cli/app.py; here they call the same command functions typer would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devstack import speed


def run(argv: list[str]) -> int | None:
    """Run a plainly written everyday command; None when typer should parse argv."""
    parsed = speed.parse(argv)
    if parsed is None:
        return None
    command, values = parsed
    return RUNNERS[command](values)


def _up(values: dict[str, Any]) -> int:
    if not values.get("vm"):  # the app's interpreter answers while devstack imports and plans
        config = str(values["config"]) if values.get("config") else None
        # a detached one's daemon made its head start at its fork
        speed.before_up(config, supervises_here=not values.get("detach") and not values.get("daemon"))
    from devstack.commands import up as cmd
    from devstack.system import console

    color = values.get("color", "auto")
    console.configure(color)
    try:
        return cmd.run(
            values.get("config"),
            detach=values.get("detach", False),
            color=color,
            daemon=values.get("daemon", False),
            vm=values.get("vm", False),
            timeout=values.get("timeout"),
        )
    finally:
        speed.discard()


def _status(values: dict[str, Any]) -> int:
    from devstack.commands import status as cmd

    return cmd.run(values.get("config"), as_json=values.get("as_json", False))


def _down(values: dict[str, Any]) -> int:
    from devstack.commands import down as cmd

    return cmd.run(values.get("config"), halt=values.get("halt", False), destroy=values.get("destroy", False))


def _logs(values: dict[str, Any]) -> int:
    from devstack.commands import logs as cmd
    from devstack.system import console

    color = values.get("color", "auto")
    console.configure(color)
    return cmd.run(
        values.get("config"),
        values["names"],
        lines=values.get("lines"),
        follow=values.get("follow", False),
        since=values.get("since"),
        grep=values.get("grep"),
        as_json=values.get("as_json", False),
        prefix=not values.get("no_prefix", False),
        color=color,
    )


RUNNERS: dict[str, Callable[[dict[str, Any]], int]] = {
    "up": _up,
    "status": _status,
    "down": _down,
    "logs": _logs,
}
