"""Host-side control of the guest: push devstack's source, start and stop the guest stack,
and run a command in the guest (for `devstack doctor`'s guest-side checks).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shlex
import tarfile
from pathlib import Path

import devstack
from devstack.errors import DevstackError, Exit
from devstack.project.config import Config
from devstack.stack import templates
from devstack.vm import ssh
from devstack.vm.agent import GUEST_BASE, GUEST_SRC, GUEST_STATE, UNIT
from devstack.vm.wheelhouse import GUEST_VENV


def run_in_guest(config: Config, command: str, timeout: float = 60.0) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a shell command in the VM; 255 when it cannot be reached.

    Rides on the SSH master of a running `devstack up --vm` (or opens its own connection).
    """
    return ssh.run(config, command, timeout=timeout)


def guest_config_path(config: Config) -> str:
    rel = config.path.relative_to(config.root).as_posix()
    return f"{config.vm.guest_path.rstrip('/')}/{rel}"


def source_tarball() -> tuple[bytes, str]:
    """devstack's own package and templates (the guest runs exactly the host's version), gzipped,
    and a digest of their content."""
    package = Path(devstack.__file__).resolve().parent
    buffer = io.BytesIO()

    def skip(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name or info.name.endswith(".pyc") else info

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(package), arcname="devstack", filter=skip)
        tar.add(str(templates.template_dir()), arcname="templates", filter=skip)
    data = buffer.getvalue()
    return gzip.compress(data, compresslevel=1, mtime=0), hashlib.sha256(data).hexdigest()[:16]


def prepare(config: Config, then: str = "") -> str:
    """Folders owned by the SSH user, and devstack's source — replaced only when it changed, so
    the guest keeps its compiled bytecode (compiling devstack costs seconds under emulation).
    then: a command run in the same round trip; its output is returned."""
    guest_path = shlex.quote(config.vm.guest_path)
    tarball, digest = source_tarball()
    script = (
        f"set -e; sudo install -d -o $(id -u) -g $(id -g) {GUEST_BASE} {GUEST_SRC} {GUEST_STATE}"
        f' {guest_path}; if [ "$(cat {GUEST_SRC}/.digest 2>/dev/null)" = {digest} ]; then cat >/dev/null;'
        f" else rm -rf {GUEST_SRC}/devstack {GUEST_SRC}/templates; tar -xzf - -C {GUEST_SRC};"
        f" echo {digest} > {GUEST_SRC}/.digest; fi; {then or 'true'}"
    )
    code, out, err = ssh.run(config, script, timeout=120, stdin=tarball)
    if code != 0:
        raise DevstackError(
            f"cannot copy devstack into the VM: {err.strip()[-200:]} — "
            "`devstack down --destroy` and `devstack up --vm` start clean",
            Exit.VM,
        )
    return out


def start_stack(config: Config) -> None:
    """The guest stack as a transient systemd unit: ssh returns at once, systemd owns it.
    One sudo for the three systemd calls (each sudo costs a PAM session under emulation)."""
    cfg = shlex.quote(guest_config_path(config))
    inner = (
        f"systemctl stop {UNIT} 2>/dev/null; systemctl reset-failed {UNIT} 2>/dev/null;"
        f" exec systemd-run --quiet --unit={UNIT} --uid=$0 --gid=$1"
        f" --working-directory={shlex.quote(config.vm.guest_path)}"
        f' --setenv=PYTHONPATH={GUEST_SRC} --setenv=HOME="$2"'
        " --property=KillMode=mixed --property=TimeoutStopSec=20"
        # The venv holds the app's requirements (wheelhouse.py); gunicorn runs under it too.
        f" {GUEST_VENV}/bin/python -m devstack.vm.agent run --config {cfg} --state {GUEST_STATE}"
    )
    script = f'sudo sh -c {shlex.quote(inner)} "$(id -u)" "$(id -g)" "$HOME"'
    code, _, err = ssh.run(config, script, timeout=60)
    if code != 0:
        raise DevstackError(
            f"cannot start the stack in the VM: {err.strip()[-200:]} — see `devstack logs`", Exit.VM
        )


def stop_stack(config: Config) -> None:
    ssh.run(
        config,
        f"sudo systemctl stop {UNIT} 2>/dev/null; sudo systemctl reset-failed {UNIT} 2>/dev/null; true",
        timeout=40,
    )


def stack_state(config: Config) -> dict[str, object]:
    """The guest stack's state.json (status, error), for messages when it is not ready."""
    code, out, _ = ssh.run(config, f"cat {GUEST_STATE}/state.json 2>/dev/null", timeout=20)
    if code != 0 or not out.strip():
        return {}
    try:
        data = json.loads(out)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def unit_status(config: Config) -> str:
    # This run's journal lines only (the unit name is reused across runs).
    script = (
        f"sudo systemctl is-active {UNIT}; id=$(sudo systemctl show -p InvocationID "
        f"--value {UNIT}); sudo journalctl _SYSTEMD_INVOCATION_ID=$id -n 5 --no-pager "
        "-o cat 2>/dev/null"
    )
    _, out, _ = ssh.run(config, script, timeout=20)
    return " | ".join(ln.strip() for ln in out.splitlines() if ln.strip())[:300]


def stack_failed(config: Config) -> str:
    """Why the guest stack's unit is dead ("" while it runs or starts)."""
    code, out, _ = ssh.run(config, f"sudo systemctl is-active {UNIT}", timeout=15)
    word = out.strip()
    if word in ("active", "activating", "reloading") or code == 255:
        return ""
    return f"the stack in the VM exited ({unit_status(config)})"
