"""`devstack down`: stop the stack of this project, from any terminal."""

from __future__ import annotations

from pathlib import Path

from devstack.commands._common import config_file, load_config
from devstack.errors import ConfigError
from devstack.stack import state
from devstack.system import env as env_mod

# No rich, psutil or backend import on the healthy path: `down` is a signal and a short wait;
# nothing running here is a read of state.json.
START_WAIT = 60.0  # an `up` holds the start lock from its checks until its supervisor is recorded


def run(config_path: Path | None, timeout: float = 20.0, halt: bool = False, destroy: bool = False) -> int:
    if halt or destroy:
        from devstack.vm import run as vm_run

        return vm_run.down(load_config(config_path), halt=halt, destroy=destroy)
    try:
        state_dir = load_config(config_path).state_dir
    except ConfigError as exc:
        # A broken devstack.toml must not keep a running stack from stopping: down needs only
        # the state dir, which sits beside the config file.
        path = config_file(config_path)
        state_dir = path.resolve().parent / ".devstack"
        _say(f"devstack: warning: {exc} (stopping anyway)")
    from devstack.system import startlock

    # An `up` still starting holds the start lock until its supervisor is in state.json: wait
    # for that, then stop what it started (never "no stack" followed by a stack coming up).
    if not startlock.wait_free(state_dir, START_WAIT):
        _say(f"devstack: warning: an `up` here is still starting after {START_WAIT:.0f} s: stopping anyway")
    current = state.read(state_dir)
    if current is None or current.supervisor is None:
        _say("devstack: no stack is running here")
        return 0
    record = current.supervisor
    running = record.alive()
    if running:
        from devstack.system import kill

        # Waits for it to exit, not to be reaped: the detached supervisor's parent is init, which
        # may reap late (a zombie that has already stopped everything counts as gone).
        kill.stop_pid(record.pid, record.alive, timeout)
    left: list[str] = []
    if any(rec.alive() for rec in current.processes.values()):
        from devstack.backends.local import cleanup_leftovers

        left = cleanup_leftovers(current)
    if not running and not left:
        _say("devstack: no stack is running here")
        return 0
    note = f" (cleaned up: {', '.join(left)})" if left else ""
    _say(f"devstack: stopped{note}")
    return 0


def _say(message: str) -> None:
    stream = env_mod.current().err()
    stream.write(message + "\n")
    stream.flush()
