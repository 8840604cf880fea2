"""`devstack restart NAME`, `devstack clear-stale [FILE]`: the dashboard's actions, from the CLI.

Both go to the running stack's live server over its unix socket (the dashboard's page goes
through nginx with its token); nothing the dashboard does is out of the terminal's reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devstack.commands._common import load_config
from devstack.errors import DevstackError, Exit
from devstack.live import query
from devstack.stack import state
from devstack.system import env as env_mod
from devstack.system.env import Env


def _ask(config_path: Path | None, action: str, body: dict[str, Any]) -> dict[str, Any]:
    config = load_config(config_path)
    current = state.read(config.state_dir)
    if current is None or current.supervisor is None or not current.supervisor.alive():
        raise DevstackError("no stack is running here: `devstack up` starts one", Exit.USAGE)
    if current.mode == "vm":
        raise DevstackError(
            f"the stack runs in the VM: use the dashboard at {current.url}/__devstack/ for {action}",
            Exit.USAGE,
        )
    status, answer = query.post(config.state_dir, action, body)
    if status == 0:
        raise DevstackError(
            "the stack's live server does not answer (server.live_reload = false turns it off, "
            "and the dashboard with it)",
            Exit.USAGE,
        )
    if status >= 400:
        raise DevstackError(str(answer.get("error") or f"refused (HTTP {status})"), Exit.USAGE)
    return answer


def restart(config_path: Path | None, name: str, env: Env | None = None) -> int:
    env = env or env_mod.current()
    _ask(config_path, "restart", {"name": name})
    env.out().write(f"devstack: restarting {name} (`devstack status` shows its new PID)\n")
    return 0


def clear_stale(config_path: Path | None, file: str = "", env: Env | None = None) -> int:
    env = env or env_mod.current()
    answer = _ask(config_path, "clear-stale", {"file": file})
    cleared = int(answer.get("cleared", 0))
    what = f" of {file}" if file else ""
    env.out().write(f"devstack: cleared {cleared} STALE row{'' if cleared == 1 else 's'}{what}\n")
    return 0
