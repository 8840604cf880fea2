"""gunicorn's head start: spawned from the last ready stack's launch record, before devstack's
own imports, config and plan, which then run while it boots (~0.1 s off `up` -> ready). With
no usable record (a project's first `up`, an edited devstack.toml), it is spawned from the plan
the moment it exists (`launch_planned`), before the supervisor's own imports and set-up.

Nothing in the record is trusted, only compared. When the supervisor starts gunicorn, a head
start whose argv, folder and environment are exactly the new plan's is adopted (`take`);
anything else is stopped and gunicorn starts as usual. A head start is only made under the
project's start lock (startlock.py: no two `up` racing), when the stack is not running, the
record's ports are free, its folders exist and the files the plan read (devstack.toml, .env)
are as they were. The record is written once a stack is ready (`remember`), per user, keyed by
the working folder and `--config`.

Imports nothing heavy: it runs first in `up --detach`'s daemon (backends/handoff.py).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from devstack import __version__, cachedir, ports, procstat, startlock
from devstack.procs import spawn

if TYPE_CHECKING:
    from pathlib import Path

    from devstack.config import Config
    from devstack.plan import Plan

FORMAT = 2  # 2: the inputs' stamps


class HeadStart:
    def __init__(
        self, proc: subprocess.Popen[bytes], argv: list[str], cwd: str, env: dict[str, str], source: str
    ):
        self.proc = proc
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.source = source  # "record" (before the config was read) or "plan"
        self.ports = {int(p) for p in _bound_ports(argv)}


_launched: HeadStart | None = None


def key(config_arg: str | None, cwd: str | None = None) -> list[Any]:
    """What one record is for: this user, this devstack, this folder and `--config`."""
    folder = os.path.realpath(cwd or os.getcwd())
    return [FORMAT, __version__, os.getuid(), folder, config_arg or ""]


def stale(saved: Any) -> bool:
    """A launch record no `up` will use again (cacheprune.py): another format or devstack
    version, another user's, or for a project folder that is gone."""
    format_, version, uid, folder = saved["key"][:4]
    return (format_, version, uid) != (FORMAT, __version__, os.getuid()) or not os.path.isdir(folder)


def _file(folder: str, record_key: list[Any]) -> str:
    return os.path.join(folder, f"launch-{zlib.crc32(json.dumps(record_key).encode()):08x}.json")


def launch(record_key: list[Any], folder: str | None = None) -> HeadStart | None:
    """Spawn gunicorn as the record says, if the record allows it now. Never raises."""
    folder = folder if folder is not None else cachedir.path()
    if folder is None:
        return None
    try:
        record = cachedir.read_json(_file(folder, record_key))
        if record.get("key") != record_key or not _free_to_start(record):
            return None
        return _spawn(record, "record")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no record, a foreign or broken one, a planted link: start as usual


def launch_planned(config: Config, the_plan: Plan, prepare: Callable[[], None]) -> HeadStart | None:
    """Spawn the plan's gunicorn now, if nothing was launched yet and the stack could start
    (not running, its ports free); prepare() first makes its folders (the backend's state dir).
    Only for the process that will supervise it: take() wants this PID in its environment.
    Never raises; a refusal is said later, by `up` itself."""
    if _launched is not None:
        return None
    record = planned(config, the_plan)
    if record is None:
        return None
    from devstack import safefs
    from devstack.errors import DevstackError

    try:
        safefs.ensure_dir(config.state_dir)  # for its start lock
        if not _free_to_start(record, need_folders=False):
            return None
        prepare()  # what `up` does next anyway: the socket folders exist
        return _spawn(record, "plan")
    except (OSError, ValueError, KeyError, DevstackError):  # a planted link: `up` says it itself
        startlock.release_held()
        return None


def planned(config: Config, the_plan: Plan) -> dict[str, Any] | None:
    """A launch record's fields for this config and plan (None: no gunicorn of ours to start
    early). One definition for the record written at ready and the head start from a plan."""
    app = next((p for p in the_plan.processes if p.name == "gunicorn"), None)
    if app is None or not app.own_deathsig:
        return None
    facts = the_plan.facts
    return {
        "argv": list(app.argv),
        "cwd": str(app.cwd),
        "env": dict(app.env),
        "state_dir": str(facts.state_dir),
        "ports": [
            ["127.0.0.1", config.server.app_port],
            [config.server.listen_host, config.server.listen_port],
        ],
        "folders": [str(f) for f in (app.cwd, facts.control_socket.parent, facts.notify_socket.parent)],
        "inputs": {},
    }


def _spawn(record: Mapping[str, Any], source: str) -> HeadStart:
    global _launched
    argv, cwd = [str(a) for a in record["argv"]], str(record["cwd"])
    env = {**os.environ, **{str(k): str(v) for k, v in record["env"].items()}}
    env["DEVSTACK_SUPERVISOR_PID"] = str(os.getpid())  # gunicorn_conf.py: PR_SET_PDEATHSIG
    proc = spawn.popen(argv, cwd, env)
    _launched = HeadStart(proc, argv, cwd, env, source)
    return _launched


def _free_to_start(record: Mapping[str, Any], need_folders: bool = True) -> bool:
    """Not while another `up` starts this stack: its start lock is taken here (kept for `up`
    when True, released otherwise). Then as _could_start says."""
    if not startlock.hold(str(record["state_dir"])):
        return False
    free = False
    try:
        free = _could_start(record, need_folders)
    finally:
        if not free:
            startlock.release_held()
    return free


def _could_start(record: Mapping[str, Any], need_folders: bool) -> bool:
    """Not while the stack runs, not onto a taken port, not without its socket folders."""
    try:
        current = cachedir.read_json(os.path.join(record["state_dir"], "state.json"))
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
    return not need_folders or all(os.path.isdir(folder) for folder in record["folders"])


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


def pending() -> HeadStart | None:
    """A head start not yet adopted or stopped."""
    return _launched


def take(argv: list[str], cwd: str, env: Mapping[str, str]) -> subprocess.Popen[bytes] | None:
    """The head start, if it is exactly this child and still running; else it is stopped."""
    global _launched
    launched, _launched = _launched, None
    startlock.release_held()  # `up` has its start lock by now: one still held is another dir's
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
    startlock.release_held()
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
    record_key: list[Any], record: Mapping[str, Any], inputs: list[Path], folder: str | None = None
) -> None:
    """Write the launch record (`planned`'s fields) of a stack that became ready (best effort).
    inputs: the files the plan read (devstack.toml, .env): an edit of one means no head start
    from the record next time."""
    folder = folder if folder is not None else cachedir.path()
    if folder is None:
        return
    saved = {**record, "key": record_key, "inputs": {str(p): stamp(str(p)) for p in inputs}}
    cachedir.write_json(_file(folder, record_key), saved)
