"""The VM backend's seams without a VM: it is a Stack, the sync feeds the shared freshness
watcher, the guest's death is asked for at most every few seconds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devstack.backends.base import Stack
from devstack.backends.local import LocalStack
from devstack.logs.sink import LogMux
from devstack.stack import readiness
from devstack.system.console import err
from devstack.vm import vagrantfile
from devstack.vm.backend import VmStack
from devstack.watch.fresh import StaticWatcher
from tests.vm.test_vm_units import FakeMachine, _project

pytestmark = pytest.mark.unit


def _stack(tmp_path: Path) -> VmStack:
    config = _project(tmp_path)
    return VmStack(
        vagrantfile.gather(config),
        LogMux(None, None),
        LogMux(None, None),
        err(),
        machine=FakeMachine("running"),
    )


def _as_stack(stack: Stack) -> Stack:
    return stack


def _local_is_a_stack(stack: LocalStack) -> Stack:
    return stack  # mypy (strict over tests) proves LocalStack fits the Protocol


def test_vm_stack_is_a_stack_and_records_vm_mode(tmp_path: Path) -> None:
    stack = _as_stack(_stack(tmp_path))
    assert stack.state.mode == "vm"
    assert stack.state.url == f"http://127.0.0.1:{stack.config.vm.host_port}"
    assert stack.state.extra["vm"]["domain"].endswith("default")


def test_synced_static_files_go_to_the_freshness_watcher(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    config = stack.config
    watcher = StaticWatcher(config.static_dir, stack.url, config.static.url, stack.mux, observe=False)
    stack.watcher = watcher
    assert watcher.observer is None and watcher.kind == "after each sync"
    css = config.static_dir.resolve() / "css" / "app.css"
    stack._synced("static/css/app.css", 0.01)
    stack._synced("app.py", 0.01)  # not static: synced, not verified
    assert watcher._superseded(css)  # queued for verification (the worker was never started)
    assert not watcher._superseded(config.root.resolve() / "app.py")


def test_every_asks_at_most_once_per_period() -> None:
    calls: list[int] = []

    def check() -> str:
        calls.append(1)
        return "dead"

    slow = readiness.every(3600.0, check)
    assert slow() == "" and calls == []
    fast = readiness.every(0.0, check)
    assert fast() == "dead" and calls == [1]


class _FakeVagrant:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def ssh_config(self) -> str:
        self.calls.append("ssh-config")
        return f"Host default\n  HostName 10.0.0.{len(self.calls)}\n"

    def status(self) -> list[object]:
        self.calls.append("status")
        return []


def test_a_warm_up_starts_no_ruby_while_libvirt_proves_the_same_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.vm import vagrantfile
    from devstack.vm.machine import VagrantMachine

    config = _project(tmp_path)
    vagrantfile.write(vagrantfile.gather(config))
    machine = VagrantMachine(vagrantfile.gather(config))
    ident = machine.root / ".vagrant" / "machines" / machine.name / machine.provider / "id"
    ident.parent.mkdir(parents=True)
    ident.write_text("0b0c-uuid", encoding="utf-8")
    calls: list[str] = []
    boot: list[str | None] = ["0b0c-uuid/3"]
    monkeypatch.setattr(VagrantMachine, "_vagrant", lambda self, log=None: _FakeVagrant(calls))
    monkeypatch.setattr(VagrantMachine, "_boot_id", lambda self: boot[0])
    assert machine.state() == "running" and calls == []
    first = machine.ssh_config()
    assert machine.ssh_config() == first and calls == ["ssh-config"]
    boot[0] = "0b0c-uuid/4"  # started again: its address may have changed
    assert machine.ssh_config() != first and calls == ["ssh-config"] * 2
    vagrantfile.vagrantfile_path(config).write_text("# changed\n", encoding="utf-8")
    machine.ssh_config()
    assert calls == ["ssh-config"] * 3
    boot[0] = None  # libvirt cannot tell: vagrant is asked every time
    machine.ssh_config()
    machine.ssh_config()
    assert machine.state() == "not_created" and calls == ["ssh-config"] * 5 + ["status"]


def test_a_closed_file_is_synced_at_once_a_modified_one_after_the_debounce(tmp_path: Path) -> None:
    from watchdog.events import FileClosedEvent, FileModifiedEvent

    from devstack.vm import sync

    config = _project(tmp_path)
    syncer = sync.Syncer(config, lambda rel, seconds: None, lambda message: None)
    css = str(config.root.resolve() / "static" / "css" / "app.css")
    syncer.on_any_event(FileModifiedEvent(css))
    (due, seen) = syncer._dirty["static/css/app.css"]
    assert due - seen == pytest.approx(sync.DEBOUNCE)
    syncer.on_any_event(FileClosedEvent(css))
    assert syncer._dirty["static/css/app.css"][1] == seen  # the edit's first event is kept
    assert syncer._dirty["static/css/app.css"][0] <= time.monotonic()  # complete: due now
    syncer.on_any_event(FileModifiedEvent(str(config.root.resolve() / ".git" / "index")))
    assert list(syncer._dirty) == ["static/css/app.css"]


def test_the_users_vagrantfile_is_read_once_per_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up --vm` gathers the project's Vagrant set-up once (vagrantfile.gather) and passes it
    down: the stack, the machine, the rendered file, the forwards and the boot all use it."""
    from devstack.vm import backend, machine, userfile

    config = _project(tmp_path)
    (config.root / "Vagrantfile").write_text(
        'Vagrant.configure("2") do |config|\n  config.vm.box = "debian/bookworm64"\n'
        '  config.vm.network "forwarded_port", guest: 5000, host: 8001\nend\n'
    )
    reads: list[Path] = []
    real = userfile.read

    def counted(root: Path) -> userfile.UserVagrantfile | None:
        reads.append(root)
        return real(root)

    monkeypatch.setattr(userfile, "read", counted)
    vm = vagrantfile.gather(config)
    stack = VmStack(vm, LogMux(None, None), LogMux(None, None), err(), machine=FakeMachine("not_created"))
    real_machine = machine.VagrantMachine(vm)
    assert backend.ensure_vm(vm, stack.machine, lambda line: None) == "VM booted in 1 s"
    assert real_machine.own is vm.own and vm.own is not None
    assert vm.config.vm.box == "debian/bookworm64"  # the user's file wins where it speaks
    assert len(reads) == 1, reads
