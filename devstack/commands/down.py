"""`devstack down`: stop the stack of this project, from any terminal."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import psutil
from rich.markup import escape

from devstack import console, state
from devstack.backends.local import cleanup_leftovers
from devstack.commands._common import config_file, load_config
from devstack.errors import ConfigError


def run(config_path: Path | None, timeout: float = 20.0, halt: bool = False, destroy: bool = False) -> int:
    if halt or destroy:
        from devstack.commands import up_vm

        return up_vm.down(load_config(config_path), halt=halt, destroy=destroy)
    try:
        state_dir = load_config(config_path).state_dir
    except ConfigError as exc:
        # A broken devstack.toml must not keep a running stack from stopping: down needs only
        # the state dir, which sits beside the config file.
        path = config_file(config_path)
        state_dir = path.resolve().parent / ".devstack"
        console.err().print(f"devstack: warning: {escape(str(exc))} (stopping anyway)")
    current = state.read(state_dir)
    if current is None or current.supervisor is None:
        console.err().print("devstack: no stack is running here")
        return 0
    supervisor = current.supervisor.process()
    if supervisor is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            supervisor.send_signal(signal.SIGTERM)
        # Wait for it to exit, not to be reaped: the detached supervisor's parent is init, which
        # may reap late (a zombie that has already stopped everything counts as gone).
        deadline = time.monotonic() + timeout
        while current.supervisor.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if current.supervisor.alive():
            with contextlib.suppress(psutil.NoSuchProcess):
                supervisor.kill()
    left = cleanup_leftovers(current)
    if supervisor is None and not left:
        console.err().print("devstack: no stack is running here")
        return 0
    note = f" (cleaned up: {', '.join(left)})" if left else ""
    console.err().print(f"devstack: stopped{note}")
    return 0
