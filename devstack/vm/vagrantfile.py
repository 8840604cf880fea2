"""Config -> the Vagrantfile devstack runs, under .devstack/vm/ (never the project's own file).

Two shapes. Without a project Vagrantfile: a complete one from Vagrantfile.j2. With one: an
overlay (Vagrantfile.overlay.j2) that `load`s the user's file unchanged and then declares only
devstack's layer (its forward, its provisioner, the serial console); Vagrant merges the blocks in
order, networks by id. vagrant then runs from the project root with VAGRANT_VAGRANTFILE naming
the overlay, so every relative path in the user's file means what it always meant, and the
machine is the one `vagrant up` there makes.

Pure apart from writing the file: the forwards it declares are kept beside it, so the next `up`
can tell whether a reload is needed without asking vagrant (whose `port` fails under libvirt).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from devstack.errors import ConfigError
from devstack.project.config import Config
from devstack.stack import templates
from devstack.vm import userfile
from devstack.vm.userfile import UserVagrantfile

# Never copied into the guest: devstack's state, vagrant's, VCS data and bytecode.
# A host venv is useless in the guest (its paths are the host's): the wheelhouse fills /opt/devstack/venv.
SYNC_EXCLUDES = (".vagrant/", ".devstack/", ".git/", "__pycache__/", "*.pyc", ".venv/", "venv/")


@dataclass(frozen=True)
class VmFacts:
    """What `up --vm`, `down --vm` and doctor read of the project's Vagrant set-up, read once
    (gather) and passed down, as stack/facts.py's HostFacts are for the local stack."""

    config: Config  # as the VM really is: the user's Vagrantfile's box, share and folder type win
    own: UserVagrantfile | None  # the project's own Vagrantfile, when devstack uses it


def gather(config: Config) -> VmFacts:
    """The one read of the project's Vagrantfile (its forwards, shares, box and machine)."""
    own = own_vagrantfile(config)
    return VmFacts(effective(config, own), own)


@dataclass(frozen=True)
class Forward:
    id: str
    guest: int
    host: int


def vm_dir(config: Config) -> Path:
    return config.state_dir / "vm"


def vagrantfile_path(config: Config) -> Path:
    return vm_dir(config) / "Vagrantfile"


def console_log(config: Config) -> Path:
    return vm_dir(config) / "console.log"


def own_vagrantfile(config: Config) -> UserVagrantfile | None:
    """The project's Vagrantfile when devstack should use it (vm.vagrantfile = auto | own)."""
    if config.vm.vagrantfile == "generated":
        return None
    user = userfile.read(config.root)
    if user is None and config.vm.vagrantfile == "own":
        raise ConfigError(
            config.path.name,
            "vm.vagrantfile",
            f'"own" but {config.root} has no Vagrantfile',
            'add one, or set vm.vagrantfile = "auto"',
        )
    if user is not None and len(user.machines) > 1:
        raise ConfigError(
            user.path.name,
            "config.vm.define",
            f"{len(user.machines)} machines ({', '.join(user.machines)}); devstack runs one",
            f'keep one config.vm.define, or set vm.vagrantfile = "generated" in {config.path.name}',
        )
    return user


def effective(config: Config, user: UserVagrantfile | None) -> Config:
    """The config as the VM really is: with the user's Vagrantfile, its box, share path and
    folder type win over the [vm] defaults (the file is the truth the VM boots from)."""
    if user is None:
        return config
    vm = replace(
        config.vm,
        box=user.box or config.vm.box,
        guest_path=user.guest_path,
        sync=user.sync_for(config.vm.provider),
    )
    return replace(config, vm=vm)


def vagrant_root(vm: VmFacts) -> Path:
    """The folder vagrant runs in (its root_path and .vagrant/)."""
    return vm.config.root if vm.own is not None else vm_dir(vm.config)


def vagrant_env(vm: VmFacts) -> dict[str, str]:
    """What vagrant needs to find the file devstack rendered."""
    config = vm.config
    if vm.own is None:
        return {}
    # Vagrant joins this to the folder it searches (a relative path, not only a name).
    return {"VAGRANT_VAGRANTFILE": vagrantfile_path(config).relative_to(config.root).as_posix()}


def machine_name(vm: VmFacts) -> str:
    return vm.own.machine if vm.own is not None else "default"


def forwards(vm: VmFacts) -> list[Forward]:
    # Guest = where the guest's nginx listens; host = the public port on this machine.
    return [Forward(_forward_id(vm), vm.config.server.listen_port, vm.config.vm.host_port)]


def _forward_id(vm: VmFacts) -> str:
    """With the user's file: the id of their forward on devstack's host port, so devstack's
    declaration replaces it (same guest port, host_ip 127.0.0.1) instead of colliding with it."""
    if vm.own is not None:
        for fwd in vm.own.forwards:
            if fwd.host == vm.config.vm.host_port and fwd.protocol == "tcp":
                return fwd.vagrant_id
    return "devstack"


def disagreements(config: Config, user: UserVagrantfile) -> list[str]:
    """The user's forwards that do not match devstack's, each one line saying what devstack does."""
    notes = []
    listen, host = config.server.listen_port, config.vm.host_port
    where = user.path.name
    for fwd in user.forwards:
        if fwd.protocol != "tcp":
            continue
        if fwd.host == host and fwd.guest != listen:
            notes.append(
                f"{where}:{fwd.line} forwards host {fwd.host} -> guest {fwd.guest}, but nginx in the "
                f"guest listens on {listen} (server.listen): devstack's layer forwards {host} -> "
                f"{listen} instead (your file is unchanged)"
            )
        elif fwd.host == host and fwd.host_ip not in ("", "127.0.0.1", "localhost"):
            notes.append(
                f"{where}:{fwd.line} forwards host {fwd.host} on {fwd.host_ip}: devstack's layer "
                "binds it to 127.0.0.1 only (your file is unchanged)"
            )
        elif fwd.guest == listen and fwd.host != host:
            notes.append(
                f"{where}:{fwd.line} forwards host {fwd.host} -> guest {fwd.guest}; devstack serves "
                f"on host {host} (vm.host_port) — set vm.host_port = {fwd.host} in "
                f"{config.path.name} to use yours"
            )
    return notes


def machine_prefix(vm: VmFacts) -> str:
    """A libvirt domain prefix unique to this project folder (two projects never share a VM).

    DEVSTACK_LIBVIRT_PREFIX overrides it (the Vagrantfile reads the same variable), so a test
    run can give all its domains one prefix and sweep them afterwards.
    """
    override = os.environ.get("DEVSTACK_LIBVIRT_PREFIX")
    if override:
        return override
    config = vm.config
    if vm.own is not None:
        return f"{config.root.resolve().name}_"  # vagrant-libvirt's own default: the folder name
    root = str(config.root.resolve())
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.root.resolve().name).strip("-")[:24] or "project"
    return f"devstack-{slug}-{hashlib.sha256(root.encode()).hexdigest()[:6]}_"


def render(vm: VmFacts) -> str:
    config, user = vm.config, vm.own
    if user is not None:
        return templates.render(
            "Vagrantfile.overlay.j2",
            config_name=config.path.name,
            user_vagrantfile=_ruby(str(user.path.resolve())),
            user_name=user.path.name,
            forwards=forwards(vm),
            console_log=_ruby(str(console_log(config).resolve())),
            queue=config.queue.started,
        )
    return templates.render(
        "Vagrantfile.j2",
        config_name=config.path.name,
        box=config.vm.box,
        boot_timeout=config.vm.boot_timeout,
        sync=config.vm.sync,
        project_root=_ruby(str(config.root.resolve())),
        guest_path=_ruby(config.vm.guest_path),
        excludes=json.dumps(list(SYNC_EXCLUDES)),
        forwards=forwards(vm),
        driver=config.vm.driver,
        cpus=config.vm.cpus,
        memory=config.vm.memory,
        prefix=machine_prefix(vm),
        console_log=_ruby(str(console_log(config).resolve())),
        queue=config.queue.started,  # app.nodes > 1: the guest runs redis-server too
    )


def _ruby(text: str) -> str:
    """Escape for a double-quoted Ruby string (a path may hold quotes or #{...})."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#")


def _forwards_file(config: Config) -> Path:
    return vm_dir(config) / "forwards.json"


def applied_forwards(config: Config) -> list[Forward] | None:
    """The forwards the running VM was booted with (None if unknown)."""
    try:
        data = json.loads(_forwards_file(config).read_text(encoding="utf-8"))
        return [Forward(**item) for item in data]
    except (OSError, ValueError, TypeError):
        return None


def record_applied(vm: VmFacts) -> None:
    _forwards_file(vm.config).write_text(json.dumps([asdict(f) for f in forwards(vm)]), encoding="utf-8")


def write(vm: VmFacts) -> Path:
    """Render and write the Vagrantfile; returns its path."""
    folder = vm_dir(vm.config)
    folder.mkdir(parents=True, exist_ok=True)
    target = vagrantfile_path(vm.config)
    text = render(vm)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target
