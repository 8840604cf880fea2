"""The VM backend: the same stack as local mode, run inside a Vagrant VM by the guest agent.

The host side boots (or reuses) the machine, opens one SSH master, pushes devstack and the app's
requirements, starts the guest stack as a systemd unit, proves it ready through the forwarded
port (stack/readiness.py, as locally), then syncs host edits and verifies each static one (the local
freshness watcher, fed by the sync). Order matters: every check that can fail cheaply (vagrant,
plugin, box, the host port) runs before vagrant boots anything; the VM is reloaded only when its
port forwards changed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from rich.console import Console

from devstack.backends.local import check_not_running
from devstack.errors import NotReady, PortTaken
from devstack.logs.sink import LogMux
from devstack.project.config import Config
from devstack.stack import readiness, state
from devstack.stack.readiness import ReadyReport
from devstack.system import ports
from devstack.vm import guest, ssh, sync, vagrantfile, wheelhouse
from devstack.vm.machine import Machine, VagrantMachine
from devstack.vm.mirror import LogMirror
from devstack.watch.fresh import StaticWatcher

READY_TIMEOUT = 90.0


def base_url(config: Config) -> str:
    return f"http://127.0.0.1:{config.vm.host_port}"


def check_host_port(config: Config) -> None:
    taken = ports.port_conflict(
        "127.0.0.1", config.vm.host_port, "vm.host_port", config.path.name, label="host port"
    )
    if taken is not None:
        raise PortTaken(taken)


def ensure_vm(vm: vagrantfile.VmFacts, machine: Machine, say: Callable[[str], None]) -> str:
    """Boot, resume or reload the VM as needed. Returns what was done, for the summary."""
    config, own = vm.config, vm.own
    machine.preflight()
    vagrantfile.write(vm)
    if own is not None:
        say(
            f"devstack: using your {own.path.name} (box {config.vm.box}, project at "
            f"{config.vm.guest_path} via {config.vm.sync}) with devstack's layer on top"
        )
        for note in vagrantfile.disagreements(config, own):
            say(f"  [yellow]![/] {note}")
    current = machine.state()
    wanted = vagrantfile.forwards(vm)
    if current == "running" and vagrantfile.applied_forwards(config) == wanted:
        return "VM already running"
    check_host_port(config)  # before vagrant: name the owner instead of a vagrant stack trace
    if current == "running":
        seconds = machine.reload()
        what = f"VM reloaded for the new port forward in {seconds:.0f} s"
    else:
        seconds = machine.up()
        what = f"VM {'booted' if current == 'not_created' else 'started'} in {seconds:.0f} s"
    vagrantfile.record_applied(vm)
    return what


class VmStack:
    """The `Stack` of a VM (backends/base.py); `up` in vm/run.py drives it."""

    def __init__(
        self,
        vm: vagrantfile.VmFacts,
        mux: LogMux,
        terminal: LogMux,
        out: Console,
        machine: Machine | None = None,
    ) -> None:
        self.vm = vm
        self.config = config = vm.config
        self.mux = mux  # the host's log files (and the screen): devstack's and the watcher's lines
        self.out = out
        self.machine = machine or VagrantMachine(vm, out)
        self.url = base_url(config)
        self.state = state.StackState(
            url=self.url,
            mode="vm",
            ports={"public": config.vm.host_port, "guest": config.server.listen_port},
            extra={
                "vm": {
                    "domain": vagrantfile.machine_prefix(vm) + self.machine.name,
                    "vagrantfile": str(vagrantfile.vagrantfile_path(config)),
                    "guest_path": config.vm.guest_path,
                }
            },
        )
        if config.server.live_reload:  # the guest's dashboard, through the forwarded port
            self.state.extra["dashboard"] = "/__devstack/"
        self.master = ssh.Master(config)
        self.mirror = LogMirror(config, terminal)  # guest logs: the screen plus the host's files
        self.syncer: sync.Syncer | None = None
        self.watcher: StaticWatcher | None = None
        self.booted = ""  # what prepare() did to the VM, for the summary
        self.wheels: wheelhouse.Result | None = None
        self.sync_seconds = 0.0
        self.phases: dict[str, float] = {}  # seconds per step, in state.json (benchmarks read it)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - started, 2)

    def prepare(self) -> None:
        check_not_running(self.config)
        self.config.state_dir.mkdir(exist_ok=True)
        (self.config.state_dir / ".gitignore").write_text("*\n", encoding="utf-8")
        with self.phase("vm"):
            self.booted = ensure_vm(self.vm, self.machine, self.out.print)

    def start(self) -> None:
        config = self.config
        self.state.supervisor = state.ProcRecord.of(os.getpid())
        self.set_status("starting")
        with self.out.status("connecting to the VM"):
            with self.phase("ssh"):
                ssh.write_config(config, self.machine.ssh_config())
                self.master.start()
                self._record("ssh", self.master.proc)
            with self.phase("push devstack"):
                probed = guest.prepare(config, then=wheelhouse.PROBE)  # makes the guest's folders
        # The project's rsync, the guest's log follower and sync receiver (Python starts, slow
        # under emulation) and the wheelhouse all proceed at once, over the one master.
        with ThreadPoolExecutor(1) as pool:
            rsync = pool.submit(sync.initial_sync, config) if config.vm.sync == "rsync" else None
            self.mirror.start()
            if rsync is not None:
                self.syncer = sync.Syncer(config, self._synced, lambda msg: self.mux.note("watcher", msg))
                self.syncer.open()
                self._record("sync", self.syncer.proc)
            with self.out.status("the app's requirements in the VM (wheelhouse)"), self.phase("wheelhouse"):
                self.wheels = wheelhouse.ensure(config, probed)
            with self.phase("initial sync"):
                self.sync_seconds = rsync.result() if rsync is not None else 0.0
        with self.out.status("starting the stack in the VM"):
            with self.phase("log follower"):
                self.mirror.wait_ready()
                self._record("logs", self.mirror.proc)
            with self.phase("guest stack"):
                guest.start_stack(config)

    def wait_ready(self, started: float, timeout: float = READY_TIMEOUT) -> ReadyReport:
        config = self.config
        target = readiness.Target(
            self.url,
            "the forward",
            config.static_dir,
            config.static.url,
            request_timeout=5.0,
            pause=0.25,
            static_patience=timeout,  # a shared folder may show the host's bytes late
            socketio_timeout=10.0,
        )
        # Whether the guest's unit died costs an ssh round trip: asked every 3 s, not per try.
        failed = readiness.every(3.0, lambda: guest.stack_failed(config))
        with self.phase("readiness"):
            return readiness.wait_ready(target, started, timeout, failed)

    def not_ready(self, report: ReadyReport) -> NotReady:
        detail = guest.stack_state(self.config).get("error") or guest.unit_status(self.config)
        return NotReady(
            f"the stack in the VM did not become ready: {report.error}"
            + (f" (guest: {detail})" if detail else "")
            + " — see `devstack logs`"
        )

    def watch(self) -> None:
        """Host edits into the guest as they are saved, each static one proven served fresh."""
        config = self.config
        if self.syncer is None:
            return  # a shared folder (nfs, virtualbox) is the guest's copy already
        if config.has_static:
            self.watcher = StaticWatcher(
                config.static_dir,
                self.url,
                config.static.url,
                self.mux,
                observe=False,
                guest_sha=self._guest_sha,
            )
            self.watcher.start()
        self.syncer.start()

    def _synced(self, rel: str, seconds: float) -> None:
        self.mux.note("watcher", f"synced {rel} into the VM ({seconds * 1000:.0f} ms after the edit)")
        path = self.config.root.resolve() / rel
        if self.watcher is not None and self.watcher.static_dir in path.parents:
            self.watcher.submit(path, time.monotonic() - seconds)

    def _guest_sha(self, file: Path) -> str | None:
        rel = file.relative_to(self.config.root.resolve()).as_posix()
        guest_file = f"{self.config.vm.guest_path.rstrip('/')}/{rel}"
        code, out, _ = ssh.run(self.config, f"sha256sum {guest_file!r}", timeout=15)
        return out.split()[0] if code == 0 and out.split() else None

    def lost(self) -> bool:
        """The SSH master we started is gone: nothing reaches the guest any more."""
        return self.master.proc is not None and self.master.proc.poll() is not None

    def set_status(self, status: str, error: str = "", ready_seconds: float | None = None) -> None:
        self.state.status, self.state.error = status, error
        if ready_seconds is not None:
            self.state.ready_seconds = ready_seconds
        self.state.extra["vm"]["phases"] = dict(self.phases)
        state.write(self.config.state_dir, self.state)

    def stop(self) -> None:
        if self.syncer is not None:
            self.syncer.stop()
        if self.watcher is not None:
            self.watcher.stop()
        guest.stop_stack(self.config)
        self.mirror.stop()
        self.master.stop()
        self.state.processes = {}
        self.set_status("stopped")

    def _record(self, name: str, proc: object) -> None:
        pid = getattr(proc, "pid", None)
        if pid is None:
            return
        try:
            self.state.processes[name] = state.ProcRecord.of(pid)
        except psutil.Error:
            return
        state.write(self.config.state_dir, self.state)
