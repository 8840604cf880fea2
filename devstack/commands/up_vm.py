"""`devstack up --vm` / `devstack down --halt|--destroy`: the stack inside a Vagrant VM.

Order matters: every check that can fail cheaply (vagrant, plugin, box, the host port) runs
before vagrant boots anything; the VM is reloaded only when its port forwards changed.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from types import FrameType

import psutil

from devstack import console, probes, state
from devstack.backends import detached, foreground
from devstack.backends.local import check_not_running
from devstack.config import Config
from devstack.errors import Exit, NotReady, PortTaken
from devstack.logs.sink import LogMux
from devstack.procs import kill
from devstack.vm import guest, ready, ssh, sync, vagrantfile, wheelhouse
from devstack.vm.backend import Backend
from devstack.vm.mirror import LogMirror


def check_host_port(config: Config) -> None:
    port = config.vm.host_port
    if probes.can_bind("127.0.0.1", port):
        return
    owner = probes.port_owner(port)
    who = owner.describe() if owner else "another process"
    raise PortTaken(
        f"host port {port} (vm.host_port in {config.path.name}) is taken by {who} — "
        "stop it, or set vm.host_port to a free port"
    )


def ensure_vm(config: Config, backend: Backend) -> str:
    """Boot, resume or reload the VM as needed. Returns what was done, for the summary."""
    backend.preflight()
    vagrantfile.write(config)
    own = vagrantfile.own_vagrantfile(config)
    if own is not None:
        backend.out.print(
            f"devstack: using your {own.path.name} (box {config.vm.box}, project at "
            f"{config.vm.guest_path} via {config.vm.sync}) with devstack's layer on top"
        )
        for note in vagrantfile.disagreements(config, own):
            backend.out.print(f"  [yellow]![/] {note}")
    current = backend.state()
    wanted = vagrantfile.forwards(config)
    if current == "running" and vagrantfile.applied_forwards(config) == wanted:
        return "VM already running"
    check_host_port(config)  # before vagrant: name the owner instead of a vagrant stack trace
    if current == "running":
        seconds = backend.reload()
        what = f"VM reloaded for the new port forward in {seconds:.0f} s"
    else:
        seconds = backend.up()
        what = f"VM {'booted' if current == 'not_created' else 'started'} in {seconds:.0f} s"
    vagrantfile.record_applied(config)
    return what


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


def run(config: Config, color: str = "auto", detach: bool = False, daemon: bool = False) -> int:
    out = console.err()
    config = vagrantfile.effective(config)  # the project's own Vagrantfile wins where it speaks
    check_not_running(config)
    if detach:
        # The same run, forked into its own session; this process echoes its progress (a first
        # boot takes minutes) and returns once state.json says ready.
        lock = foreground.acquire_start_lock(config.state_dir)
        body = functools.partial(run, config, "never", daemon=True)
        return detached.run_detached(config, body, color, lock, VM_DETACH_TIMEOUT, progress=True)
    started = time.monotonic()
    config.state_dir.mkdir(exist_ok=True)
    (config.state_dir / ".gitignore").write_text("*\n", encoding="utf-8")
    backend = Backend(config, out)
    what = ensure_vm(config, backend)
    boot_seconds = time.monotonic() - started

    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    record = state.StackState(
        url=ready.base_url(config),
        mode="vm",
        ports={"public": config.vm.host_port, "guest": config.server.listen_port},
        supervisor=state.ProcRecord.of(os.getpid()),
        extra={
            "vm": {
                "domain": vagrantfile.machine_prefix(config) + backend.machine,
                "vagrantfile": str(vagrantfile.vagrantfile_path(config)),
                "guest_path": config.vm.guest_path,
            }
        },
    )
    state.write(config.state_dir, record)

    screen = None if daemon else sys.stdout.buffer
    mux = LogMux(
        config.state_dir / "logs",
        screen,
        color=console.use_color(color),
        max_bytes=config.logs.max_bytes,
        backups=config.logs.backups,
    )
    terminal = LogMux(None, screen, color=console.use_color(color))
    master = ssh.Master(config)
    mirror = LogMirror(config, terminal)
    syncer: sync.Syncer | None = None
    fresh: sync.FreshnessWatcher | None = None
    ok = False
    try:
        with out.status("connecting to the VM"):
            ssh.write_config(config, backend.ssh_config())
            master.start()
            _record(config, record, "ssh", master.proc)
            guest.prepare(config)
            sync_seconds = sync.initial_sync(config) if config.vm.sync == "rsync" else 0.0
        with out.status("the app's requirements in the VM (wheelhouse)"):
            wheels = wheelhouse.ensure(config)
        with out.status("starting the stack in the VM"):
            mirror.start()
            mirror.wait_ready()
            _record(config, record, "logs", mirror.proc)
            guest.start_stack(config)
        mux.hold()
        terminal.hold()
        with out.status(f"waiting for the stack through {ready.base_url(config)}"):
            report = ready.wait_ready(config, failed=lambda: guest.stack_failed(config))
        if not report.ok:
            detail = guest.stack_state(config).get("error") or guest.unit_status(config)
            raise NotReady(
                f"the stack in the VM did not become ready: {report.error}"
                + (f" (guest: {detail})" if detail else "")
                + " — see `devstack logs`"
            )
        if config.vm.sync == "rsync":
            watcher = sync.FreshnessWatcher(
                config, ready.base_url(config), lambda line: mux.note("watcher", line)
            )
            watcher.start()
            fresh = watcher
            syncer = sync.Syncer(
                config, lambda rel, s: _synced(mux, watcher, rel, s), lambda msg: mux.note("watcher", msg)
            )
            syncer.start()
            _record(config, record, "sync", syncer.proc)
        total = time.monotonic() - started
        out.print(
            f"[bold green]ready[/] in {total:.1f} s — [bold]{ready.base_url(config)}/[/] "
            f"({what}; stack ready {total - boot_seconds:.1f} s later)"
        )
        for step in report.steps:
            out.print(f"  [green]✓[/] {step}")
        if config.vm.sync == "rsync":
            out.print(
                f"  [green]✓[/] files synced into the VM ({sync_seconds:.1f} s); "
                "host edits are synced as you save"
            )
        done = "installed" if wheels.installed else "already in the VM, nothing installed"
        fetched = "downloaded" if wheels.downloaded else "cached on the host"
        out.print(
            f"  [green]✓[/] app requirements: {wheels.wheels} wheels "
            f"({fetched}; {done}; {wheels.seconds:.1f} s)"
        )
        if not daemon:
            out.print(
                "  Ctrl-C stops the stack (the VM keeps running: `devstack down --halt` or `--destroy`)"
            )
        # Ready in state.json only now: `up --vm --detach` has echoed every line above by then.
        record.status, record.ready_seconds = "ready", total
        record.extra["vm"].update(
            boot_seconds=round(boot_seconds, 1), stack_seconds=round(total - boot_seconds, 1)
        )
        state.write(config.state_dir, record)
        mux.note("devstack", f"ready in {total:.1f} s at {ready.base_url(config)}/ (VM)")
        mux.release()
        terminal.release()
        ok = True
        stop.raising = False
        while not stop.event.wait(0.5):
            if master.proc is not None and master.proc.poll() is not None:
                mux.note("devstack", "the SSH connection to the VM was lost; stopping")
                break
    finally:
        if syncer is not None:
            syncer.stop()
        if fresh is not None:
            fresh.stop()
        guest.stop_stack(config)
        mirror.stop()
        master.stop()
        mux.release()
        terminal.release()
        record.status = "stopped" if ok else "failed"
        record.processes = {}
        state.write(config.state_dir, record)
        mux.close()
        terminal.close()
    out.print(f"devstack: stopped ({stop.reason or 'connection lost'}); the VM keeps running")
    return int(Exit.OK)


def _record(config: Config, record: state.StackState, name: str, proc: object) -> None:
    pid = getattr(proc, "pid", None)
    if pid is None:
        return
    try:
        record.processes[name] = state.ProcRecord.of(pid)
    except psutil.Error:
        return
    state.write(config.state_dir, record)


def _synced(mux: LogMux, fresh: sync.FreshnessWatcher, rel: str, seconds: float) -> None:
    mux.note("watcher", f"synced {rel} into the VM ({seconds * 1000:.0f} ms after the edit)")
    fresh.synced(rel)


def down(config: Config, halt: bool = False, destroy: bool = False) -> int:
    out = console.err()
    config = vagrantfile.effective(config)
    current = state.read(config.state_dir)
    if current is not None and current.supervisor is not None:
        if current.supervisor.alive():
            kill.stop_pid(current.supervisor.pid, current.supervisor.alive, 60.0)
        for record in current.processes.values():
            state.terminate_group(record, grace=3.0)
    if not vagrantfile.vagrantfile_path(config).exists():
        out.print("devstack: no VM here")
        return 0
    backend = Backend(config, out)
    if backend.state() == "not_created":
        out.print("devstack: the VM does not exist")
        return 0
    if destroy:
        with out.status("destroying the VM"):
            backend.destroy()
        for name in ("forwards.json", "ssh_config"):
            (vagrantfile.vm_dir(config) / name).unlink(missing_ok=True)
        out.print("devstack: VM destroyed")
    elif halt:
        with out.status("halting the VM"):
            backend.halt()
        (vagrantfile.vm_dir(config) / "forwards.json").unlink(missing_ok=True)
        out.print("devstack: VM halted")
    return 0
