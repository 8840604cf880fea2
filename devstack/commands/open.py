"""`devstack open` (and `up --open`): the stack's dashboard, /__devstack/ on its own URL, opened in
the browser (webbrowser: the user's default; a terminal without one just gets the URL)."""

from __future__ import annotations

import threading
import time
import webbrowser
from pathlib import Path

from devstack.commands._common import load_config
from devstack.errors import DevstackError, Exit
from devstack.stack import state
from devstack.system import env as env_mod
from devstack.system.env import Env


def dashboard_url(current: state.StackState) -> str:
    """The dashboard's URL from state.json ("" when the stack runs without one)."""
    path = current.extra.get("dashboard")
    return f"{current.url}{path}" if isinstance(path, str) and path else ""


def run(config_path: Path | None, env: Env | None = None, browser: bool = True) -> int:
    env = env or env_mod.current()
    config = load_config(config_path)
    current = state.read(config.state_dir)
    if current is None or current.supervisor is None or not current.supervisor.alive():
        raise DevstackError(
            "no stack is running here: `devstack up --open` starts one and opens it", Exit.USAGE
        )
    url = dashboard_url(current)
    if not url:
        raise DevstackError(
            "this stack runs without its dashboard: server.live_reload = false turns both off", Exit.USAGE
        )
    env.out().write(f"dashboard: {url}\n")
    if browser:
        _open(url)
    return 0


def _open(url: str) -> None:
    try:
        webbrowser.open(url)
    except webbrowser.Error:
        pass  # no browser here: the URL is printed


def open_when_ready(config_path: Path | None, timeout: float = 120.0) -> None:
    """`up --open` in the foreground: open the dashboard once state.json says ready."""

    def wait() -> None:
        config = load_config(config_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = state.read(config.state_dir)
            if current is not None and current.status == "ready":
                url = dashboard_url(current)
                if url:
                    _open(url)
                return
            time.sleep(0.2)

    threading.Thread(target=wait, daemon=True, name="open-dashboard").start()
