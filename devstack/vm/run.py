"""`devstack up --vm` (foreground or detached: drive a VmStack from this process until stopped)
and `devstack down --halt|--destroy`.

The VM's counterpart of foreground.py. The VM keeps running after the stack stops (`devstack
down --halt` / `--destroy` end it); Ctrl-C, `devstack down` or a lost SSH connection stop the stack.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
from types import FrameType

from rich.console import Console

from devstack.backends import detached
from devstack.backends.local import check_not_running
from devstack.errors import Exit
from devstack.logs.sink import LogMux
from devstack.project.config import Config
from devstack.stack import state
from devstack.system import console, kill, startlock
from devstack.vm import vagrantfile
from devstack.vm.backend import VmStack
from devstack.vm.machine import SSH_CONFIG_CACHE, VagrantMachine

VM_DETACH_TIMEOUT = 900.0  # a first boot with a box download and provisioning


class _Stop:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.raising = True  # until ready: interrupt whatever waits, the finally cleans up

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.reason = signal.Signals(signum).name
        self.event.set()
        if self.raising:
            self.raising = False
            raise KeyboardInterrupt


def up(config: Config, color: str = "auto", detach: bool = False, daemon: bool = False) -> int:
    return _up(vagrantfile.gather(config), color, detach, daemon)  # its only read of the Vagrantfile


def _up(vm: vagrantfile.VmFacts, color: str, detach: bool, daemon: bool) -> int:
    out = console.err()
    config = vm.config  # the project's own Vagrantfile wins where it speaks
    if detach:
        # The same run, forked into its own session; this process echoes its progress (a first
        # boot takes minutes) and returns once state.json says ready. Refused here already when
        # a stack runs (the daemon's prepare() checks again, under the start lock).
        check_not_running(config)
        lock = startlock.acquire(config.state_dir)
        body = functools.partial(_up, vm, "never", False, True)
        return detached.run_detached(config, body, color, lock, VM_DETACH_TIMEOUT, progress=True)
    started = time.monotonic()
    screen = None if daemon else sys.stdout.buffer
    config.state_dir.mkdir(exist_ok=True)
    mux = LogMux(
        config.state_dir / "logs",
        screen,
        color=console.use_color(color),
        max_bytes=config.logs.max_bytes,
        backups=config.logs.backups,
    )
    terminal = LogMux(None, screen, color=console.use_color(color))  # the guest's lines
    stack = VmStack(vm, mux, terminal, out)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ok = False
    try:
        stack.prepare()
        boot_seconds = time.monotonic() - started
        stack.start()
        mux.hold()
        terminal.hold()
        with out.status(f"waiting for the stack through {stack.url}"):
            report = stack.wait_ready(time.monotonic())
        if not report.ok:
            raise stack.not_ready(report)
        stack.watch()
        total = time.monotonic() - started
        _summary(out, stack, total, boot_seconds, report.steps, daemon)
        # Ready in state.json only now: `up --vm --detach` has echoed every line above by then.
        stack.state.extra["vm"].update(
            boot_seconds=round(boot_seconds, 1), stack_seconds=round(total - boot_seconds, 1)
        )
        stack.set_status("ready", ready_seconds=total)
        mux.note("devstack", f"ready in {total:.1f} s at {stack.url}/ (VM)")
        mux.release()
        terminal.release()
        ok = True
        stop.raising = False
        while not stop.event.wait(0.5):
            if stack.lost():
                mux.note("devstack", "the SSH connection to the VM was lost; stopping")
                break
    finally:
        if stack.state.supervisor is not None:  # start() began: stop what it started
            stack.stop()
            if not ok:
                stack.set_status("failed", stack.state.error)
        mux.release()
        terminal.release()
        mux.close()
        terminal.close()
    out.print(f"devstack: stopped ({stop.reason or 'connection lost'}); the VM keeps running")
    return int(Exit.OK)


def _summary(out: Console, stack: VmStack, total: float, boot: float, steps: list[str], daemon: bool) -> None:
    out.print(
        f"[bold green]ready[/] in {total:.1f} s — [bold]{stack.url}/[/] "
        f"({stack.booted}; stack ready {total - boot:.1f} s later)"
    )
    for step in steps:
        out.print(f"  [green]✓[/] {step}")
    if stack.config.vm.sync == "rsync":
        out.print(
            f"  [green]✓[/] files synced into the VM ({stack.sync_seconds:.1f} s); "
            "host edits are synced as you save"
        )
    wheels = stack.wheels
    if wheels is not None:
        done = "installed" if wheels.installed else "already in the VM, nothing installed"
        fetched = "downloaded" if wheels.downloaded else "cached on the host"
        out.print(
            f"  [green]✓[/] app requirements: {wheels.wheels} wheels "
            f"({fetched}; {done}; {wheels.seconds:.1f} s)"
        )
    if stack.config.server.live_reload:  # the guest's dashboard, through the forwarded port
        out.print(f"  dashboard: [bold]{stack.url}/__devstack/[/] (`devstack open` opens it)")
    if not daemon:
        out.print("  Ctrl-C stops the stack (the VM keeps running: `devstack down --halt` or `--destroy`)")


def down(config: Config, halt: bool = False, destroy: bool = False) -> int:
    """Stop a running `up --vm` (from any terminal); --halt / --destroy the VM too."""
    out = console.err()
    vm = vagrantfile.gather(config)
    config = vm.config
    current = state.read(config.state_dir)
    if current is not None and current.supervisor is not None:
        if current.supervisor.alive():
            kill.stop_pid(current.supervisor.pid, current.supervisor.alive, 60.0)
        for record in current.processes.values():
            state.terminate_group(record, grace=3.0)
    if not vagrantfile.vagrantfile_path(config).exists():
        out.print("devstack: no VM here")
        return 0
    machine = VagrantMachine(vm, out)
    if machine.state() == "not_created":
        out.print("devstack: the VM does not exist")
        return 0
    if destroy:
        with out.status("destroying the VM"):
            machine.destroy()
        for name in ("forwards.json", "ssh_config", SSH_CONFIG_CACHE):
            (vagrantfile.vm_dir(config) / name).unlink(missing_ok=True)
        out.print("devstack: VM destroyed")
    elif halt:
        with out.status("halting the VM"):
            machine.halt()
        (vagrantfile.vm_dir(config) / "forwards.json").unlink(missing_ok=True)
        out.print("devstack: VM halted")
    return 0
