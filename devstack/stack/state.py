"""The stack's state file (.devstack/state.json): who runs, since when, on which ports.

A process is identified by PID *and* start time, so a recycled PID is never mistaken for ours.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.errors import DevstackError
from devstack.system import procstat, safefs, trust

if TYPE_CHECKING:
    import psutil

STATE_FILE = "state.json"


@dataclass
class ProcRecord:
    """A process as recorded in state.json: PID plus start time (a reused PID is not ours)."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcRecord:
        try:
            return cls(pid=pid, create_time=procstat.started_at(pid))
        except (OSError, ValueError):  # no /proc (macOS): psutil, ~10 ms to import
            import psutil

            return cls(pid=pid, create_time=psutil.Process(pid).create_time())

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None if it is gone or the PID was reused."""
        import psutil  # here, not at the top: `status` and `down` mostly need only alive()

        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.05:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        fast = procstat.alive(self.pid, self.create_time)
        return fast if fast is not None else self.process() is not None


@dataclass
class StackState:
    """state.json: the running stack as `status`, `down` and the next `up` see it."""

    status: str = "starting"  # starting | ready | failed | stopping | stopped
    url: str = ""
    mode: str = "local"  # local | vm
    supervisor: ProcRecord | None = None
    processes: dict[str, ProcRecord] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    error: str = ""
    started_at: float = field(default_factory=time.time)
    ready_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        sup = data.get("supervisor")
        return cls(
            status=str(data.get("status", "stopped")),
            url=str(data.get("url", "")),
            mode=str(data.get("mode", "local")),
            supervisor=ProcRecord(**sup) if sup else None,
            processes={k: ProcRecord(**v) for k, v in data.get("processes", {}).items()},
            ports={k: int(v) for k, v in data.get("ports", {}).items()},
            error=str(data.get("error", "")),
            started_at=float(data.get("started_at", 0.0)),
            ready_seconds=data.get("ready_seconds"),
            extra=dict(data.get("extra", {})),
        )


def path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read(state_dir: Path) -> StackState | None:
    """None when there is no usable state file; a symlink in its place is a HostileFile, and
    one another user wrote or could write is refused in one line (its PIDs are never signalled)."""
    untrusted = trust.problem(str(path(state_dir)))
    if untrusted is not None:
        raise DevstackError(trust.message(str(path(state_dir)), untrusted))
    try:
        data = json.loads(safefs.read_bytes(path(state_dir)))
    except (OSError, ValueError):
        return None
    try:
        return StackState.from_json(data)
    except (TypeError, ValueError, KeyError):
        return None


# The detached daemon's pipe to the `up` that waits for it (backends/detached.py): one byte per
# write says "read state.json now", so that `up` returns the moment the stack is ready.
_notify_fd: int | None = None


def notify_on_write(fd: int | None) -> None:
    global _notify_fd
    _notify_fd = fd


def write(state_dir: Path, state: StackState) -> None:
    global _notify_fd
    safefs.ensure_dir(state_dir)
    # Atomic (readers never see half a file), and never through a symlink planted there.
    safefs.write_text(path(state_dir), json.dumps(state.to_json(), indent=2))
    if _notify_fd is not None:
        try:
            os.write(_notify_fd, b".")
        except OSError:  # `up` has returned (its end is closed): nobody waits any more
            os.close(_notify_fd)
            _notify_fd = None


def terminate_group(record: ProcRecord, grace: float = 5.0) -> bool:
    """TERM the process group led by record (if it is still ours), wait, then KILL.

    Returns True when something of ours was running.
    """
    from devstack.system import kill

    if not record.alive():  # /proc first: after a clean stop, psutil is never imported
        return False
    try:
        pgid = os.getpgid(record.pid)
    except ProcessLookupError:
        return False
    if pgid == record.pid:  # it leads its group (started in its own session): the whole group
        kill.stop_group(record.pid, grace=grace, members=_group_members(pgid))
    else:
        kill.stop_pid(record.pid, record.alive, grace)
    return True


def _group_members(pgid: int) -> list[psutil.Process]:
    import psutil

    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members
