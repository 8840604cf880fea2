"""The real-VM tier: one Vagrant VM (libvirt, QEMU) per session, booted by `devstack up --vm`.

Opt-in: DEVSTACK_VM_TESTS=1, vagrant + vagrant-libvirt + a reachable libvirtd, and the box.
Run it through .ci/vm-tier, which runs pytest inside the network namespace holding libvirt
(the forwarded port is an `ssh -L` there, so the HTTP clients must run there too).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.require import have, in_ci, needs, require, simulated_missing
from tests.support.stack import EXAMPLE, Project, cli_env

BOOT_TIMEOUT = 600.0


def vm_wanted() -> bool:
    """The tier is opt-in: DEVSTACK_VM_TESTS=1, or CI=true unless DEVSTACK_VM_TESTS=0 (scripts/test.sh
    runs it through .ci/vm-tier first, then the other tiers with DEVSTACK_VM_TESTS=0)."""
    flag = os.environ.get("DEVSTACK_VM_TESTS", "")
    return flag == "1" or (flag != "0" and in_ci())


def not_wanted() -> str:
    if os.environ.get("DEVSTACK_VM_TESTS") == "0":
        return "DEVSTACK_VM_TESTS=0: the real-VM tier is not part of this run (.ci/vm-tier runs it)"
    return "real-VM tier is opt-in: run .ci/vm-tier (or set DEVSTACK_VM_TESTS=1)"


@functools.cache
def vm_missing() -> str:
    """What the wanted tier lacks on this machine ("" for nothing): asked once per session."""
    if not have("vagrant"):
        return "vagrant is not installed (vm/host-up.sh installs it)"
    if "vagrant-libvirt" in simulated_missing() or not list(
        Path("/usr/share/rubygems-integration/all/gems").glob("vagrant-libvirt-*")
    ):
        return "vagrant-libvirt is not installed (vm/host-up.sh installs it)"
    if not have("virsh"):
        return "virsh is not installed (vm/host-up.sh installs libvirt-clients)"
    probe = subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "libvirtd is not reachable (vm/host-up.sh starts it in a network namespace)"
    boxes = subprocess.run(["vagrant", "box", "list"], capture_output=True, text=True, check=False)
    if "devstack-test" not in boxes.stdout:
        return "the devstack-test box is not added (vm/build-box.sh, then vm/add-box.sh)"
    return ""


def require_vm() -> None:
    """Skip when the tier is not asked for; when it is, a missing prerequisite skips locally
    and fails under CI (tests/support/require.py)."""
    if not vm_wanted():
        pytest.skip(not_wanted())
    missing = vm_missing()
    require(not missing, f"real-VM tier: {missing}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    vm_items = [item for item in items if item.get_closest_marker("vm") is not None]
    if not vm_items:
        return
    if not vm_wanted():
        skip = pytest.mark.skip(reason=not_wanted())
        for item in vm_items:
            item.add_marker(skip)
        return
    missing = vm_missing()
    if missing:
        for item in vm_items:
            item.add_marker(needs(False, f"real-VM tier: {missing}"))


class VMProject(Project):
    proc: subprocess.Popen[bytes] | None = None

    def up_vm(self, timeout: float = BOOT_TIMEOUT) -> float:
        """`devstack up --vm` in the foreground (as a user runs it), until state says ready."""
        started = time.monotonic()
        out = open(self.root.parent / "up-vm.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--vm"],
            cwd=self.root,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        while time.monotonic() - started < timeout:
            if self.state().get("status") == "ready" and self.state().get("mode") == "vm":
                return time.monotonic() - started
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        tail = (self.root.parent / "up-vm.out").read_text(errors="replace")[-3000:]
        raise AssertionError(f"devstack up --vm did not become ready:\n{tail}")

    def stop_up(self) -> None:
        result = self.cli("down", timeout=90)
        assert result.returncode == 0, result.stderr
        if self.proc is not None:
            self.proc.wait(timeout=60)
            assert self.proc.returncode == 0, f"up --vm exited {self.proc.returncode}"
            self.proc = None

    def set_host_port(self, port: int) -> None:
        text = self.config_path.read_text(encoding="utf-8")
        head = text.split("\n[vm]\n")[0]
        self.config_path.write_text(head + f"\n[vm]\nhost_port = {port}\n", encoding="utf-8")


@pytest.fixture(scope="session")
def vm_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VMProject]:
    """examples/chat copied to a private folder; its VM booted once for the whole session."""
    require_vm()
    base = tmp_path_factory.mktemp("vm")
    root = base / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    project = VMProject(root, 5000, 5001)
    project.set_host_port(8001)
    try:
        seconds = project.up_vm()
        print(f"\ndevstack up --vm on a fresh VM: ready through :8001 in {seconds:.0f} s")
        yield project
    finally:
        if project.proc is not None and project.proc.poll() is None:
            project.cli("down", timeout=90)
            project.proc.wait(timeout=60)
        project.cli("down", "--destroy", timeout=180)
        _sweep(project)


def _sweep(project: VMProject) -> None:
    """Whatever `down --destroy` missed: a test failure must not leave a domain running."""
    prefix = os.environ.get("DEVSTACK_LIBVIRT_PREFIX", "")
    if not prefix:
        return
    names = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for name in names:
        if name.startswith(prefix):
            subprocess.run(
                ["virsh", "-c", "qemu:///system", "destroy", name], capture_output=True, check=False
            )
            subprocess.run(
                ["virsh", "-c", "qemu:///system", "undefine", name, "--remove-all-storage"],
                capture_output=True,
                check=False,
            )
