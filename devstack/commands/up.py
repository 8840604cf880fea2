"""`devstack up`: render, validate, start, prove ready, then stream logs until Ctrl-C.

The foreground run is backends/foreground.py, `--detach` is backends/detached.py, `--vm` is
vm/run.py: this module only picks one.
"""

from __future__ import annotations

import os
from pathlib import Path

from devstack import speed
from devstack.commands._common import load_config
from devstack.stack import facts, plan


def run(
    config_path: Path | None,
    detach: bool = False,
    color: str = "auto",
    daemon: bool = False,
    vm: bool = False,
    timeout: float | None = None,
    open_dashboard: bool = False,
) -> int:
    try:
        if open_dashboard and not detach:
            from devstack.commands import open as open_cmd

            open_cmd.open_when_ready(config_path)
        code = _run(config_path, detach, color, daemon, vm, timeout)
        if open_dashboard and detach and code == 0:
            from devstack.commands import open as open_cmd

            open_cmd.run(config_path)
        return code
    finally:
        speed.discard()  # a head start `up` never got to adopt (it failed first) is stopped


def _run(
    config_path: Path | None, detach: bool, color: str, daemon: bool, vm: bool, timeout: float | None
) -> int:
    # State, logs, nginx's temp files and gunicorn's control socket are never writable by other
    # users, whatever the shell's umask (000 would make them all world-writable).
    os.umask(os.umask(0o022) | 0o022)
    config = load_config(config_path)
    if vm:
        from devstack.vm import run as vm_run

        return vm_run.up(config, color=color, detach=detach)
    the_plan = plan.build(config, facts.gather(config), colors=color != "never")
    from devstack.backends.statedir import prepare_state_dir

    if not detach or speed.parent_waits():  # this process supervises: gunicorn boots meanwhile
        speed.launch_planned(config, the_plan, lambda: prepare_state_dir(config, the_plan.facts))
    from devstack.backends import detached, foreground
    from devstack.system import console  # the supervisor's own imports and set-up overlap gunicorn's boot

    for warning in the_plan.warnings:
        console.err().print(f"[yellow]warning:[/] {warning}")
    refused = speed.cache_refused()
    if refused is not None:
        console.err().print(
            f"[yellow]warning:[/] {console.escape(refused)} (nothing is cached)", soft_wrap=True
        )
    for note in the_plan.notes:
        console.err().print(f"note: {note}", soft_wrap=True)
    if detach:
        return detached.detach(config, the_plan, color, timeout)
    return foreground.supervise(config, the_plan, color, daemon, timeout=timeout)
