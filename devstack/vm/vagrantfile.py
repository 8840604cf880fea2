"""Config -> the generated Vagrantfile under .devstack/vm/ (never the project's own Vagrantfile).

Pure apart from writing the file: the forwards it declares are kept beside it, so the next `up`
can tell whether a reload is needed without asking vagrant (whose `port` fails under libvirt).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from devstack import templates
from devstack.config import Config

# Never copied into the guest: devstack's state, vagrant's, VCS data and bytecode.
SYNC_EXCLUDES = (".vagrant/", ".devstack/", ".git/", "__pycache__/", "*.pyc")


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


def forwards(config: Config) -> list[Forward]:
    # Guest = where the guest's nginx listens; host = the public port on this machine.
    return [Forward("devstack", config.server.listen_port, config.vm.host_port)]


def machine_prefix(config: Config) -> str:
    """A libvirt domain prefix unique to this project folder (two projects never share a VM).

    DEVSTACK_LIBVIRT_PREFIX overrides it (the Vagrantfile reads the same variable), so a test
    run can give all its domains one prefix and sweep them afterwards.
    """
    override = os.environ.get("DEVSTACK_LIBVIRT_PREFIX")
    if override:
        return override
    root = str(config.root.resolve())
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.root.resolve().name).strip("-")[:24] or "project"
    return f"devstack-{slug}-{hashlib.sha256(root.encode()).hexdigest()[:6]}_"


def render(config: Config) -> str:
    return templates.render(
        "Vagrantfile.j2",
        config_name=config.path.name,
        box=config.vm.box,
        boot_timeout=config.vm.boot_timeout,
        sync=config.vm.sync,
        project_root=_ruby(str(config.root.resolve())),
        guest_path=_ruby(config.vm.guest_path),
        excludes=json.dumps(list(SYNC_EXCLUDES)),
        forwards=forwards(config),
        driver=config.vm.driver,
        cpus=config.vm.cpus,
        memory=config.vm.memory,
        prefix=machine_prefix(config),
        console_log=_ruby(str(console_log(config).resolve())),
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


def record_applied(config: Config) -> None:
    _forwards_file(config).write_text(json.dumps([asdict(f) for f in forwards(config)]), encoding="utf-8")


def write(config: Config) -> Path:
    """Render and write the Vagrantfile; returns its path."""
    folder = vm_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    target = vagrantfile_path(config)
    text = render(config)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target
