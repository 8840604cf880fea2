"""gunicorn's head start: spawned from the last ready stack's launch record, before devstack's
own imports, config and plan, which then run while it boots (~0.1 s off `up` -> ready).

Nothing in the record is trusted, only compared. When the supervisor starts gunicorn, a head
start whose argv, folder and environment are exactly the new plan's is adopted (`take`);
anything else is stopped and gunicorn starts as usual. A head start is only made when the stack
is not running, the record's ports are free, its folders exist and the files the plan read
(devstack.toml, .env) are as they were. The record is written once a
stack is ready (`remember`), per user, keyed by the working folder and `--config`.

Imports nothing heavy: it runs first in `up --detach`'s daemon (backends/handoff.py).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from devstack import __version__, cachedir, ports, procstat
from devstack.procs import spawn

if TYPE_CHECKING:
    from pathlib import Path

FORMAT = 2  # 2: the inputs' stamps


class HeadStart:
    def __init__(self, proc: subprocess.Popen[bytes], argv: list[str], cwd: str, env: dict[str, str]):
        self.proc = proc
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.ports = {int(p) for p in _bound_ports(argv)}


_launched: HeadStart | None = None


def key(config_arg: str | None, cwd: str | None = None) -> list[Any]:
    """What one record is for: this user, this devstack, this folder and `--config`."""
    folder = os.path.realpath(cwd or os.getcwd())
    return [FORMAT, __version__, os.getuid(), folder, config_arg or ""]


def _file(folder: str, record_key: list[Any]) -> str:
    return os.path.join(folder, f"launch-{zlib.crc32(json.dumps(record_key).encode()):08x}.json")


def _read_json(path: str) -> Any:
    """A small JSON file, never through a symlink planted in its place (ELOOP: an OSError)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return json.loads(handle.read(1 << 20))


def launch(record_key: list[Any], folder: str | None = None) -> HeadStart | None:
    """Spawn gunicorn as the record says, if the record allows it now. Never raises."""
    global _launched
    folder = folder if folder is not None else cachedir.path()
    if folder is None:
        return None
    try:
        record = _read_json(_file(folder, record_key))
        if record.get("key") != record_key or not _free_to_start(record):
            return None
        argv, cwd = [str(a) for a in record["argv"]], str(record["cwd"])
        env = {**os.environ, **{str(k): str(v) for k, v in record["env"].items()}}
        env["DEVSTACK_SUPERVISOR_PID"] = str(os.getpid())  # gunicorn_conf.py: PR_SET_PDEATHSIG
        proc = spawn.popen(argv, cwd, env)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no record, a foreign or broken one, a planted link: start as usual
    _launched = HeadStart(proc, argv, cwd, env)
    return _launched


def _free_to_start(record: Mapping[str, Any]) -> bool:
    """Not while the stack runs, not onto a taken port, not without its socket folders."""
    try:
        current = _read_json(os.path.join(record["state_dir"], "state.json"))
        boss = current.get("supervisor") or {}
        running = current.get("status") not in ("stopped", "failed") and boss
        if running and procstat.alive(int(boss["pid"]), float(boss["create_time"])) is not False:
            return False
    except FileNotFoundError:
        pass
    # devstack.toml or .env edited since: the plan will differ, and a head start would only
    # be stopped again (a doomed gunicorn boot competing with `up` for the CPU).
    if any(stamp(str(path)) != saved for path, saved in record["inputs"].items()):
        return False
    for host, port in record["ports"]:
        if not ports.can_bind(str(host), int(port)):
            return False
    return all(os.path.isdir(folder) for folder in record["folders"])


def stamp(path: str) -> list[int] | None:
    """A file as last written (None: no such file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _bound_ports(argv: list[str]) -> list[str]:
    """The ports of gunicorn's --bind/-b arguments."""
    out = []
    for flag, value in itertools.pairwise(argv):
        if flag in ("--bind", "-b") and ":" in value:
            out.append(value.rsplit(":", 1)[1])
    return [p for p in out if p.isdigit()]


def holds(port: int) -> bool:
    """A head start not yet adopted is bound (or binding) to port: `up`'s port check skips it."""
    return _launched is not None and port in _launched.ports and _launched.proc.poll() is None


def pending() -> int | None:
    """The PID of a head start not yet adopted or stopped."""
    return _launched.proc.pid if _launched is not None else None


def take(argv: list[str], cwd: str, env: Mapping[str, str]) -> subprocess.Popen[bytes] | None:
    """The head start, if it is exactly this child and still running; else it is stopped."""
    global _launched
    launched, _launched = _launched, None
    if launched is None:
        return None
    same = (launched.argv, launched.cwd, launched.env) == (list(argv), str(cwd), dict(env))
    if same and launched.proc.poll() is None:
        return launched.proc
    _stop(launched)
    return None


def discard() -> None:
    """Stop a head start nobody adopted (`up` failed before starting gunicorn)."""
    global _launched
    launched, _launched = _launched, None
    if launched is not None:
        _stop(launched)


def _stop(launched: HeadStart) -> None:
    from devstack.procs import kill

    proc = launched.proc
    kill.stop_group(proc.pid, grace=3.0, exited=lambda: proc.poll() is not None)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def remember(
    record_key: list[Any],
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    state_dir: Path,
    ports: list[tuple[str, int]],
    folders: list[Path],
    inputs: list[Path],
    folder: str | None = None,
) -> None:
    """Write the launch record of a stack that became ready (best effort). inputs: the files
    the plan read (devstack.toml, .env): an edit of one means no head start next time."""
    import contextlib
    from pathlib import Path

    from devstack import safefs
    from devstack.errors import DevstackError

    folder = folder if folder is not None else cachedir.path()
    if folder is None:
        return
    record = {
        "key": record_key,
        "argv": list(argv),
        "cwd": str(cwd),
        "env": dict(env),
        "state_dir": str(state_dir),
        "ports": [[host, port] for host, port in ports],
        "folders": [str(f) for f in folders],
        "inputs": {str(p): stamp(str(p)) for p in inputs},
    }
    with contextlib.suppress(OSError, ValueError, DevstackError):
        safefs.ensure_dir(Path(folder), 0o700)
        safefs.write_text(Path(_file(folder, record_key)), json.dumps(record), mode=0o600)
