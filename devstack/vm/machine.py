"""The VM itself (not a devstack backend: vm/backend.py drives it): `Machine` is what the VM
backend needs of it, `VagrantMachine` does it through python-vagrant — preflight, state, up/reload
with a live progress view, halt, destroy, ssh-config.

Every failure a user can hit is a one-line DevstackError with the fix. vagrant's stderr goes to
.devstack/vm/vagrant.log so an error can quote it; stdout is streamed into the progress view.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from rich.console import Console

from devstack.errors import DevstackError, Exit
from devstack.system import console, runner
from devstack.vm import vagrantfile

PLUGINS = {"libvirt": "vagrant-libvirt", "virtualbox": ""}  # virtualbox support is built in
# vagrant's "==> default: Booting domain..." lines are the steps shown in the progress view.
_STEP = re.compile(r"^==> [\w.-]+: (.*)$")
# Box uploads redraw one line ("\x1b[KProgress: 42%") thousands of times: keep the last figure.
_PROGRESS = re.compile(r"Progress: (\d+)%")
SSH_CONFIG_CACHE = "ssh_config.cache.json"


class VMError(DevstackError):
    exit_code = Exit.VM


def vagrant_env(vm: vagrantfile.VmFacts) -> dict[str, str]:
    env = os.environ.copy()
    env.setdefault("VAGRANT_NO_COLOR", "1")
    env.setdefault("VAGRANT_CHECKPOINT_DISABLE", "1")  # no phone-home on every command
    env.update(vagrantfile.vagrant_env(vm))
    return env


class Machine(Protocol):
    """One Vagrant machine, as the VM backend drives it (tests use a fake)."""

    name: str  # vagrant's machine name ("default")

    def preflight(self) -> None: ...
    def state(self) -> str: ...
    def up(self) -> float: ...
    def reload(self) -> float: ...
    def halt(self) -> None: ...
    def destroy(self) -> None: ...
    def ssh_config(self) -> str: ...


class VagrantMachine:
    def __init__(self, vm: vagrantfile.VmFacts, out: Console | None = None) -> None:
        self.vm = vm
        self.config = config = vm.config
        self.out = out or console.err()
        self.root = vagrantfile.vagrant_root(vm)
        self.name = vagrantfile.machine_name(vm)
        self.own = vm.own
        self.log_path = vagrantfile.vm_dir(config) / "vagrant.log"
        self.provider = config.vm.provider
        self._vagrant_bin = shutil.which("vagrant")

    # -- preflight: cheap checks, each naming the fix ------------------------------------------
    def preflight(self) -> None:
        if self._vagrant_bin is None:
            raise VMError(
                "vagrant is not installed — install it (Debian/Ubuntu: apt-get install "
                "vagrant; elsewhere: the installer from the Vagrant site)"
            )
        plugin = PLUGINS.get(self.provider, "")
        if plugin and not self._has_plugin(plugin):
            raise VMError(
                f"the vagrant provider plugin {plugin} is missing — install it "
                f"(apt-get install {plugin}, or `vagrant plugin install {plugin}`)"
            )
        # A box the user's Vagrantfile computes (not a literal) is vagrant's to find.
        dynamic_box = self.own is not None and self.own.box is None
        if not dynamic_box and not self._has_box(self.config.vm.box):
            raise VMError(
                f"the vagrant box {self.config.vm.box!r} is not installed for provider "
                f"{self.provider} — add it with `vagrant box add --name "
                f"{self.config.vm.box} BOX_FILE_OR_URL` (the test box: vm/build-box.sh)"
            )

    def _plain(self, *args: str, timeout: float = 60.0) -> runner.Completed:
        assert self._vagrant_bin is not None
        return runner.run(
            [self._vagrant_bin, *args], timeout=timeout, env=vagrant_env(self.vm), cwd=self.root
        )

    def _has_plugin(self, plugin: str) -> bool:
        gems = Path("/usr/share/rubygems-integration/all/gems")
        if any(gems.glob(f"{plugin}-*")):  # Debian's packaged plugin: no need to start ruby
            return True
        result = self._plain("plugin", "list")
        return plugin in result.out

    def _has_box(self, box: str) -> bool:
        if "/" in box and not Path(box).exists():
            pass  # a catalog name (org/name): vagrant may fetch it itself
        home = Path(os.environ.get("VAGRANT_HOME", Path.home() / ".vagrant.d"))
        folder = home / "boxes" / box.replace("/", "-VAGRANTSLASH-")
        if folder.is_dir():
            # boxes/NAME/VERSION/PROVIDER, or .../VERSION/ARCH/PROVIDER on newer vagrant
            provider = self.provider
            return any(folder.glob(f"*/{provider}")) or any(folder.glob(f"*/*/{provider}"))
        return False

    # -- python-vagrant ------------------------------------------------------------------------
    def _vagrant(self, log: IO[str] | None = None) -> object:
        import vagrant

        vagrantfile.vm_dir(self.config).mkdir(parents=True, exist_ok=True)
        handle = log

        @contextlib.contextmanager
        def err_cm() -> Iterator[IO[str] | None]:
            yield handle

        kwargs: dict[str, object] = {"root": str(self.root), "env": vagrant_env(self.vm)}
        if handle is not None:
            kwargs["err_cm"] = err_cm
            kwargs["out_cm"] = err_cm
        return vagrant.Vagrant(**kwargs)  # type: ignore[no-untyped-call]

    def state(self) -> str:
        """not_created | running | shutoff | paused | ... (vagrant's word for the machine)."""
        if not vagrantfile.vagrantfile_path(self.config).exists():
            return "not_created"
        # No machine id yet: vagrant never created this VM. Saves a `vagrant status` (seconds
        # of ruby start-up) on every first boot.
        if self._machine_id() is None:
            return "not_created"
        if self._boot_id() is not None:
            return "running"  # libvirt says so: no `vagrant status` (a ruby start) on a warm `up`
        with open(self.log_path, "a", encoding="utf-8") as log:
            v = self._vagrant(log)
            try:
                statuses = v.status()  # type: ignore[attr-defined]
            except subprocess.CalledProcessError as exc:
                raise VMError(f"`vagrant status` failed ({self._tail()}) — see {self.log_path}") from exc
        return str(statuses[0].state) if statuses else "not_created"

    def up(self) -> float:
        """Boot (or resume) the VM; provisions on the first boot only. Returns seconds taken."""
        return self._stream("up", lambda v: v.up(provider=self.provider, stream_output=True))

    def reload(self) -> float:
        return self._stream("reload", lambda v: v.reload(stream_output=True))

    def _stream(self, what: str, start: object) -> float:
        started = time.monotonic()
        timeout = self.config.vm.boot_timeout
        lines: deque[str] = deque(maxlen=30)
        with (
            open(self.log_path, "a", encoding="utf-8") as log,
            self.out.status(f"vagrant {what}: starting") as spinner,
        ):
            log.write(f"\n--- vagrant {what} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
            log.flush()
            v = self._vagrant(log)
            try:
                current = "starting"
                for raw in start(v):  # type: ignore[operator]
                    line = raw.rstrip()
                    progress = _PROGRESS.findall(line)
                    if progress:
                        line = _PROGRESS.sub("", line).replace("\x1b[K", "").strip()
                        suffix = f" {progress[-1]}%"
                    else:
                        suffix = ""
                    if line:
                        log.write(line + "\n")
                        lines.append(line)
                    step = _STEP.match(line)
                    if step:
                        current = step.group(1)[:90]
                    spinner.update(f"vagrant {what} [{time.monotonic() - started:.0f} s]: {current}{suffix}")
            except subprocess.CalledProcessError:
                log.flush()
                raise self._failure(what, list(lines), timeout) from None
        return time.monotonic() - started

    def _failure(self, what: str, lines: list[str], timeout: int) -> VMError:
        text = "\n".join(lines) + "\n" + self._tail(40)
        if "Timed out while waiting for the machine to boot" in text or "boot_timeout" in text:
            tail = self._console_tail()
            return VMError(
                f"the VM did not boot within {timeout} s (console: {tail}) — raise "
                "vm.boot_timeout, or check the box (full console: "
                f"{vagrantfile.console_log(self.config)})"
            )
        if "provision" in text.lower() and ("non-zero exit status" in text or "devstack:" in text):
            why = next((ln.strip() for ln in reversed(text.splitlines()) if "devstack:" in ln), self._tail())
            return VMError(
                f"guest provisioning failed: {why} — use a box with nginx and the "
                "stack's Python packages (vm/build-box.sh), then `devstack up --vm`"
            )
        return VMError(f"`vagrant {what}` failed: {self._tail()} — full output in {self.log_path}")

    def _tail(self, count: int = 1) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no output"
        wanted = [
            ln.strip()
            for ln in text.splitlines()
            if ln.strip() and not ln.startswith("---") and not ln.startswith("==>")
        ]
        if count == 1:
            errors = [ln for ln in wanted if "rror" in ln or "failed" in ln.lower()]
            return (errors or wanted or ["no output"])[-1][:300]
        return "\n".join(wanted[-count:])

    def _console_tail(self) -> str:
        try:
            path = vagrantfile.console_log(self.config)
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no console output"
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return " | ".join(lines[-3:])[:300] or "empty"

    def halt(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            self._vagrant(log).halt()  # type: ignore[attr-defined]

    def destroy(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            self._vagrant(log).destroy()  # type: ignore[attr-defined]

    def ssh_config(self) -> str:
        """`vagrant ssh-config`, kept while the same Vagrantfile(s) run the same boot of the same
        machine (its address and key cannot have changed): a warm `up` starts no ruby for it."""
        key = self._ssh_config_key()
        cache = vagrantfile.vm_dir(self.config) / SSH_CONFIG_CACHE
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if key is not None and cached["key"] == key:
                return str(cached["text"])
        with open(self.log_path, "a", encoding="utf-8") as log:
            try:
                text = str(self._vagrant(log).ssh_config())  # type: ignore[attr-defined]
            except subprocess.CalledProcessError as exc:
                raise VMError(
                    f"`vagrant ssh-config` failed: {self._tail()} — is the VM running? (`devstack up --vm`)"
                ) from exc
        if key is not None:
            cache.write_text(json.dumps({"key": key, "text": text}), encoding="utf-8")
            cache.chmod(0o600)
        return text

    def _machine_id(self) -> str | None:
        path = self.root / ".vagrant" / "machines" / self.name / self.provider / "id"
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _boot_id(self) -> str | None:
        """This boot of the machine, when libvirt proves it running (`virsh dominfo`: its domain
        Id is new on every start); None when it cannot tell (another provider, no virsh)."""
        machine_id = self._machine_id()
        virsh = shutil.which("virsh")
        if self.provider != "libvirt" or machine_id is None or virsh is None:
            return None
        uri = os.environ.get("LIBVIRT_DEFAULT_URI", "qemu:///system")  # vagrant-libvirt's default
        result = runner.run([virsh, "-c", uri, "dominfo", machine_id], timeout=10)
        info = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in result.out.splitlines())}
        if not result.ok or info.get("State") != "running" or not info.get("Id", "-").isdigit():
            return None
        return f"{machine_id}/{info['Id']}"

    def _ssh_config_key(self) -> str | None:
        boot = self._boot_id()
        if boot is None:
            return None
        digest = hashlib.sha256(boot.encode())
        for path in (vagrantfile.vagrantfile_path(self.config), self.own.path if self.own else None):
            if path is not None:
                digest.update(path.read_bytes())
        return digest.hexdigest()
