"""One persistent SSH connection to the guest (an OpenSSH ControlMaster owned by devstack).

Every later command and stream (sync, logs, guest checks) rides on it: no handshake per use,
which under emulation is what makes `vagrant ssh -c` and `vagrant rsync` take seconds.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from devstack.errors import DevstackError, Exit
from devstack.project.config import Config
from devstack.system import runner
from devstack.system.kill import stop_process
from devstack.vm import sockdir, vagrantfile

HOST = "default"  # the Host name in `vagrant ssh-config` output
_OPTIONS = (
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ServerAliveInterval=10",
    "-o",
    "ServerAliveCountMax=6",
)


def config_path(config: Config) -> Path:
    return vagrantfile.vm_dir(config) / "ssh_config"


def socket_path(config: Config) -> Path:
    # One socket per project, in a private directory; a short name: unix socket paths are
    # limited to ~100 bytes.
    import hashlib

    digest = hashlib.sha256(str(config.root.resolve()).encode()).hexdigest()[:12]
    return sockdir.private_dir() / f"ssh-{digest}.sock"


def base_argv(config: Config) -> list[str]:
    return ["ssh", "-F", str(config_path(config)), "-o", f"ControlPath={socket_path(config)}", *_OPTIONS]


def write_config(config: Config, text: str) -> None:
    path = config_path(config)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


class Master:
    """The ControlMaster: a child process of `up`, stopped with it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        sock = socket_path(self.config)
        if sockdir.is_our_socket(sock) and alive(self.config):
            return  # our master from a previous `up` still serves: reuse it
        sock.unlink(missing_ok=True)
        argv = [*base_argv(self.config), "-M", "-N", "-o", "ControlPersist=no", HOST]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raw = self.proc.stderr.read() if self.proc.stderr else b""
                err = raw.decode(errors="replace")
                raise DevstackError(
                    f"cannot open SSH to the VM: {err.strip() or 'ssh exited'} — "
                    "check `vagrant ssh` in .devstack/vm",
                    Exit.VM,
                )
            if sockdir.is_our_socket(sock) and alive(self.config):
                return
            time.sleep(0.1)
        raise DevstackError(
            f"SSH to the VM did not come up within {timeout:.0f} s — check `vagrant ssh` in .devstack/vm",
            Exit.VM,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        socket_path(self.config).unlink(missing_ok=True)


def alive(config: Config) -> bool:
    return runner.run([*base_argv(config), "-O", "check", HOST], timeout=10).ok


def run(
    config: Config, command: str, timeout: float = 60.0, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run a shell command in the guest: (exit code, stdout, stderr). Never raises on failure.
    Not through runner.run: stdin here is bytes (the source push is a tar stream)."""
    if not config_path(config).exists():
        return 255, "", "the VM is not up (no .devstack/vm/ssh_config): run `devstack up --vm`"
    try:
        result = subprocess.run(
            [*base_argv(config), HOST, command],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout:.0f} s: {command}"
    return (result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"))


def popen(config: Config, command: str) -> subprocess.Popen[bytes]:
    """A long-lived guest command with pipes (the sync receiver, the log follower)."""
    return subprocess.Popen(
        [*base_argv(config), HOST, command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def rsync_argv(config: Config) -> list[str]:
    """rsync over the master connection (`-e` takes one shell-quoted string)."""
    return ["rsync", "-e", " ".join(shlex.quote(a) for a in base_argv(config))]
