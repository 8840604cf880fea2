"""VM mode without a VM: the Vagrantfile, the reload decision, errors, the guest receiver.

These run in every tier (no vagrant needed); the real-VM acceptance is test_vm_stack.py.
"""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import pytest

from devstack.errors import DevstackError, Exit, PortTaken
from devstack.project.config import Config, load
from devstack.vm import agent, vagrantfile
from devstack.vm import backend as vm_backend
from devstack.vm.machine import Machine, VagrantMachine, VMError
from tests.support.stack import EXAMPLE, free_port


def _project(tmp_path: Path, vm: str = "") -> Config:
    root = tmp_path / "chat"
    import shutil

    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    if vm:
        with open(root / "devstack.toml", "a", encoding="utf-8") as handle:
            handle.write(f"\n[vm]\n{vm}\n")
    return load(root / "devstack.toml")


@pytest.mark.unit
def test_vagrantfile_forward_sync_and_provider(tmp_path: Path) -> None:
    config = _project(tmp_path)
    text = vagrantfile.render(vagrantfile.gather(config))
    assert (
        'config.vm.network "forwarded_port", id: "devstack", guest: 5000, host: 8001, host_ip: "127.0.0.1"'
    ) in text
    assert f'config.vm.synced_folder "{config.root}", "/vagrant", type: "rsync"' in text
    assert 'ENV.fetch("DEVSTACK_LIBVIRT_DRIVER", "qemu")' in text
    assert 'libvirt.management_network_mode = "none"' in text
    assert '".devstack/"' in text  # devstack's own state never goes into the guest


@pytest.mark.unit
def test_vagrantfile_share_options(tmp_path: Path) -> None:
    nfs = vagrantfile.render(vagrantfile.gather(_project(tmp_path / "a", 'sync = "nfs"')))
    assert 'type: "nfs"' in nfs and '"actimeo=1"' in nfs
    vbox = vagrantfile.render(
        vagrantfile.gather(_project(tmp_path / "b", 'sync = "virtualbox"\nguest_path = "/srv/app"'))
    )
    assert 'type: "virtualbox"' in vbox and 'owner: "vagrant"' in vbox
    assert 'config.vm.synced_folder ".", "/vagrant", disabled: true' in vbox
    kvm = vagrantfile.render(
        vagrantfile.gather(_project(tmp_path / "c", 'driver = "kvm"\nhost_port = 17001'))
    )
    assert '"DEVSTACK_LIBVIRT_DRIVER", "kvm"' in kvm and "host: 17001" in kvm


@pytest.mark.unit
def test_users_own_vagrantfile_is_never_touched(tmp_path: Path) -> None:
    config = _project(tmp_path)
    own = config.root / "Vagrantfile"
    own.write_text("# mine\n", encoding="utf-8")
    path = vagrantfile.write(vagrantfile.gather(config))
    assert path == config.root / ".devstack" / "vm" / "Vagrantfile"
    assert own.read_text(encoding="utf-8") == "# mine\n"


class FakeMachine:
    """A Machine (vm/machine.py) that records what the VM backend asked of it."""

    name = "default"

    def __init__(self, state: str) -> None:
        self._state = state
        self.calls: list[str] = []

    def preflight(self) -> None:
        self.calls.append("preflight")

    def state(self) -> str:
        return self._state

    def up(self) -> float:
        self.calls.append("up")
        return 1.0

    def reload(self) -> float:
        self.calls.append("reload")
        return 1.0

    def halt(self) -> None:
        self.calls.append("halt")

    def destroy(self) -> None:
        self.calls.append("destroy")

    def ssh_config(self) -> str:
        return "Host default\n"


def _ensure(config: Config, machine: Machine) -> str:
    return vm_backend.ensure_vm(vagrantfile.gather(config), machine, lambda line: None)


@pytest.mark.unit
def test_reload_only_when_the_forwards_change(tmp_path: Path) -> None:
    config = _project(tmp_path, f"host_port = {free_port()}")
    fake = FakeMachine("not_created")
    _ensure(config, fake)
    assert fake.calls == ["preflight", "up"]
    running = FakeMachine("running")
    _ensure(config, running)
    assert running.calls == ["preflight"]  # same forwards: no reload, no port check
    moved = _project(tmp_path / "x", f"host_port = {free_port()}")
    vagrantfile.vm_dir(moved).mkdir(parents=True)
    (vagrantfile.vm_dir(moved) / "forwards.json").write_text(
        json.dumps([{"id": "devstack", "guest": 5000, "host": 1}]), encoding="utf-8"
    )
    again = FakeMachine("running")
    _ensure(moved, again)
    assert again.calls == ["preflight", "reload"]


def test_taken_host_port_names_the_owner_before_vagrant(tmp_path: Path) -> None:
    port = free_port()
    config = _project(tmp_path, f"host_port = {port}")
    fake = FakeMachine("not_created")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        with pytest.raises(PortTaken) as caught:
            _ensure(config, fake)
    assert f"host port {port}" in str(caught.value) and f"pid {os.getpid()}" in str(caught.value)
    assert "up" not in fake.calls


@pytest.mark.unit
def test_preflight_errors_are_one_line_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _project(tmp_path)
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(VMError) as caught:
        VagrantMachine(vagrantfile.gather(config)).preflight()
    assert "vagrant is not installed" in str(caught.value) and caught.value.exit_code == Exit.VM
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/vagrant")
    monkeypatch.setattr(VagrantMachine, "_has_plugin", lambda self, plugin: False)
    with pytest.raises(VMError, match="vagrant-libvirt is missing"):
        VagrantMachine(vagrantfile.gather(config)).preflight()
    monkeypatch.setattr(VagrantMachine, "_has_plugin", lambda self, plugin: True)
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "empty"))
    with pytest.raises(VMError, match="box 'devstack-test' is not installed"):
        VagrantMachine(vagrantfile.gather(config)).preflight()


@pytest.mark.unit
def test_boot_timeout_quotes_the_console(tmp_path: Path) -> None:
    config = _project(tmp_path)
    vagrantfile.vm_dir(config).mkdir(parents=True)
    vagrantfile.console_log(config).write_text("Begin: Mounting root\nKernel panic - not syncing\n")
    backend = VagrantMachine(vagrantfile.gather(config))
    error = backend._failure("up", ["Timed out while waiting for the machine to boot."], 300)
    assert "did not boot within 300 s" in str(error) and "Kernel panic" in str(error)
    assert "\n" not in str(error)


@pytest.mark.unit
def test_receiver_writes_atomically_and_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "guest"
    frames = io.BytesIO()
    for header, data in (
        (
            {"op": "put", "path": "static/a.css", "size": 3, "mode": 0o644, "mtime_ns": 10**18, "seq": 1},
            b"abc",
        ),
        ({"op": "put", "path": "../escape", "size": 1, "mode": 0o644, "mtime_ns": 1, "seq": 2}, b"x"),
        ({"op": "del", "path": "static/a.css", "seq": 3}, b""),
    ):
        frames.write(json.dumps(header).encode() + b"\n" + data)
    frames.seek(0)
    out = io.BytesIO()
    agent._receive(root, frames, out)
    replies = out.getvalue().decode().splitlines()
    assert replies[0] == "ready" and replies[1] == "ok 1" and replies[2].startswith("err 2")
    assert replies[3] == "ok 3"
    assert not (root / "static" / "a.css").exists() and not (tmp_path / "escape").exists()


@pytest.mark.unit
def test_vm_errors_are_devstack_errors() -> None:
    assert issubclass(VMError, DevstackError)


@pytest.mark.unit
def test_provisioning_failure_names_the_cause(tmp_path: Path) -> None:
    config = _project(tmp_path)
    vagrantfile.vm_dir(config).mkdir(parents=True)
    lines = [
        "==> default: Running provisioner: devstack (shell)...",
        "    default: devstack: nginx is missing in the box and cannot be installed",
        "The SSH command responded with a non-zero exit status.",
    ]
    error = VagrantMachine(vagrantfile.gather(config))._failure("up", lines, 300)
    assert str(error).startswith("guest provisioning failed: ")
    assert "nginx is missing" in str(error) and "vm/build-box.sh" in str(error)


@pytest.mark.unit
def test_guest_doctor_command_checks_the_guests_own_stack(tmp_path: Path) -> None:
    import shlex

    from devstack.doctor import guest as doctor_guest

    config = _project(tmp_path)
    env_and_argv = shlex.split(doctor_guest.guest_command(config, as_json=True).split(" && ", 1)[1])
    assert env_and_argv[0].startswith("PYTHONPATH=")
    argv = env_and_argv[1:]
    assert argv[1:4] == ["-m", "devstack", "doctor"]
    # Not the net area: the guest's nginx listens on 0.0.0.0 on purpose, behind the forward.
    assert argv[4:8] == list(doctor_guest.GUEST_AREAS)
    assert argv[argv.index("--url") + 1] == f"http://127.0.0.1:{config.server.listen_port}"
    assert argv[argv.index("--nginx-conf") + 1] == f"{agent.GUEST_STATE}/nginx.conf"
    assert argv[argv.index("--static-dir") + 1] == f"{config.vm.guest_path}/static"
    assert "--json" in argv
