"""What the project's own Vagrantfile declares, read from its text (never by running Ruby).

devstack runs the user's Vagrantfile unchanged through a generated overlay (vagrantfile.py) and
only needs a few facts from it: the box (for the preflight), the share of the project folder (the
guest path and how files get there), the machine name, and the port forwards (to override the one
on devstack's host port by its Vagrant id, and to report a forward that disagrees). A static read
is enough for the Vagrantfiles people write; a value it cannot read falls back to Vagrant's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

NAME = "Vagrantfile"
DEFAULT_GUEST_PATH = "/vagrant"
# The folder types Vagrant picks when a share names none (the provider's own).
PROVIDER_DEFAULT_SYNC = {"libvirt": "nfs", "virtualbox": "virtualbox"}

_VALUE = r"""(?:"([^"]*)"|'([^']*)'|(\d+)|:(\w+))"""
_FORWARDED_PORT = r"""\.vm\.network\s*\(?\s*(?:"forwarded_port"|'forwarded_port'|:forwarded_port)"""


@dataclass(frozen=True)
class UserForward:
    line: int  # 1-based, for messages
    guest: int
    host: int
    host_ip: str
    protocol: str
    explicit_id: str

    @property
    def vagrant_id(self) -> str:
        """The id Vagrant gives it: the explicit one, else host_ip + protocol + host port
        (Vagrant merges networks by this id, so a later declaration with it replaces this one)."""
        return self.explicit_id or f"{self.host_ip}{self.protocol}{self.host}"


@dataclass(frozen=True)
class UserVagrantfile:
    path: Path
    box: str | None = None
    guest_path: str = DEFAULT_GUEST_PATH
    sync_type: str | None = None  # None: the provider's default
    machines: tuple[str, ...] = ()  # config.vm.define names; () means Vagrant's "default"
    forwards: tuple[UserForward, ...] = field(default_factory=tuple)

    @property
    def machine(self) -> str:
        return self.machines[0] if len(self.machines) == 1 else "default"

    def sync_for(self, provider: str) -> str:
        return self.sync_type or PROVIDER_DEFAULT_SYNC.get(provider, "rsync")


def find(root: Path) -> Path | None:
    for name in (NAME, NAME.lower()):
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def parse(path: Path, text: str) -> UserVagrantfile:
    box: str | None = None
    guest_path = DEFAULT_GUEST_PATH
    sync_type: str | None = None
    machines: list[str] = []
    forwards: list[UserForward] = []
    for line_no, statement in _statements(text):
        if m := re.search(r"\.vm\.box\s*=\s*" + _VALUE, statement):
            box = _first(m)
        elif m := re.search(r"\.vm\.define\s*\(?\s*" + _VALUE, statement):
            machines.append(_first(m))
        elif m := re.search(r"\.vm\.synced_folder\s*\(?\s*" + _VALUE + r"\s*,\s*" + _VALUE, statement):
            host, guest = _first(m, 0), _first(m, 4)
            if host.rstrip("/") in (".", "") and guest:
                if _option(statement, "disabled") == "true":
                    continue
                guest_path = guest
                sync_type = _option(statement, "type") or None
        elif re.search(_FORWARDED_PORT, statement):
            guest_port, host_port = _option(statement, "guest"), _option(statement, "host")
            if guest_port.isdigit() and host_port.isdigit():
                forwards.append(
                    UserForward(
                        line=line_no,
                        guest=int(guest_port),
                        host=int(host_port),
                        host_ip=_option(statement, "host_ip"),
                        protocol=_option(statement, "protocol") or "tcp",
                        explicit_id=_option(statement, "id"),
                    )
                )
    return UserVagrantfile(path, box, guest_path, sync_type, tuple(machines), tuple(forwards))


def read(root: Path) -> UserVagrantfile | None:
    path = find(root)
    if path is None:
        return None
    return parse(path, path.read_text(encoding="utf-8", errors="replace"))


def _statements(text: str) -> list[tuple[int, str]]:
    """(first line number, statement) with comments dropped and continued lines joined
    (a call whose line ends with ',' or '\\' goes on)."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line and not pending:
            continue
        if not pending:
            start = number
        pending = f"{pending} {line}".strip()
        if pending.endswith(",") or pending.endswith("\\"):
            pending = pending.rstrip("\\")
            continue
        out.append((start, pending))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _option(statement: str, key: str) -> str:
    """A keyword option's value: `key: v`, `:key => v` or `"key" => v`."""
    spellings = rf"""(?:(?<![\w:]){key}:\s*|:{key}\s*=>\s*|["']{key}["']\s*=>\s*)"""
    pattern = spellings + rf"(?:{_VALUE[3:-1]}|(true|false))"
    m = re.search(pattern, statement)
    if m is None:
        return ""
    return next((g for g in m.groups() if g is not None), "")


def _first(m: re.Match[str], offset: int = 0) -> str:
    return next((g for g in m.groups()[offset : offset + 4] if g is not None), "")
