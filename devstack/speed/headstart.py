"""gunicorn's head start: spawned gated the moment `up` starts (`launch_gated`):
`python -m gunicorn --config gunicorn_conf.py`, nothing of the plan in it, importing gunicorn
while devstack reads its config and plans, then waiting in gunicorn_conf.py on a pipe. Once the
plan exists, `launch_planned` writes the plan's command line and environment into the pipe and
gunicorn_conf.py applies them as config-file settings. A plan that needs what a started
interpreter can no longer change (a PYTHON*, locale or loader variable, another interpreter or
folder) closes the gate instead: the gated gunicorn exits and the plan's is spawned at once.

When the supervisor starts gunicorn, a head start whose argv, folder and environment are exactly
the plan's is adopted (`take`); anything else is stopped and gunicorn starts as usual. A head
start is only made under the project's start lock (system/startlock.py: no two `up` racing),
when the stack is not running and its ports are free. Nothing of the plan is kept on disk
between runs (a launch record did that until it was measured to save nothing the gate does not).

Imports nothing heavy: it runs first in `up --detach`'s daemon (speed/handoff.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from devstack import GUNICORN_CONF
from devstack.speed import GATE, GATE_RECORD, cachedir
from devstack.system import ports, procstat, spawn, startlock

if TYPE_CHECKING:
    from devstack.project.config import Config
    from devstack.stack.plan import Plan

CONF = GUNICORN_CONF
# Read by the interpreter or by gunicorn's own imports before gunicorn_conf.py runs: a gated
# gunicorn started with another value cannot become the plan's (gunicorn reads PORT,
# WEB_CONCURRENCY, FORWARDED_ALLOW_IPS, SENDFILE and XDG_RUNTIME_DIR into its defaults).
READ_AT_START = ("PYTHON", "LC_", "LD_", "MALLOC_", "GUNICORN_")
READ_AT_START_NAMES = frozenset(
    (
        "LANG",
        "LANGUAGE",
        "TZ",
        "PORT",
        "WEB_CONCURRENCY",
        "FORWARDED_ALLOW_IPS",
        "SENDFILE",
        "XDG_RUNTIME_DIR",
    )
)
# ... except these, which gunicorn_conf.py applies to sys as it opens the gate.
APPLIED_AT_GATE = frozenset(("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"))


class HeadStart:
    def __init__(
        self, proc: subprocess.Popen[bytes], argv: list[str], cwd: str, env: dict[str, str], source: str
    ):
        self.proc = proc
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.source = source  # "gate" (before the config was read) or "plan"
        self.ports = {int(p) for p in _bound_ports(argv)}
        self.gate: int | None = None  # a gated one: the pipe its settings are written to


_launched: HeadStart | None = None


def launch_gated(config_arg: str | None) -> HeadStart | None:
    """Spawn gunicorn gated now, in the folder holding devstack.toml with the
    interpreter `up` will most likely choose (project/pythonprobe.py), under the project's start lock,
    unless the stack runs. Its imports then overlap devstack's config and plan. Never raises."""
    if _launched is not None:
        return None
    from devstack.project import pythonprobe

    root, sure = pythonprobe.project_root(config_arg)
    if not sure:
        return None  # a pyproject.toml may not be devstack's: no .devstack/ made beside it
    python = pythonprobe.venv_python(root) or sys.executable  # apppython.locate's last resort
    state_dir = os.path.join(root, ".devstack")
    try:
        if os.path.islink(state_dir):
            return None  # `up` refuses it with its one-line error
        with contextlib.suppress(FileExistsError):
            os.mkdir(state_dir, 0o755)
        if not _free_to_start({"state_dir": state_dir, "ports": []}, need_folders=False):
            return None
        read, write = os.pipe()
        try:
            # PYTHONUNBUFFERED and an empty GUNICORN_CMD_ARGS are what every plan sets (stack/plan.py).
            gated_env = {"PYTHONUNBUFFERED": "1", "GUNICORN_CMD_ARGS": "", GATE: str(read)}
            record = {"argv": [python, "-m", "gunicorn", "--config", CONF], "cwd": root, "env": gated_env}
            launched = _spawn(record, "gate", pass_fds=(read,))
        finally:
            os.close(read)
    except OSError:
        startlock.release_held()
        return None
    launched.gate = write
    return launched


def launch_planned(config: Config, the_plan: Plan, prepare: Callable[[], None]) -> HeadStart | None:
    """Start the plan's gunicorn now, if the stack could start (not running, its ports free):
    through the gate of a gated one (launch_gated) when it can become the plan's, else spawned;
    prepare() first makes its folders (the backend's state dir). Only for the process that will
    supervise it: take() wants this PID in its environment. Never raises; a refusal is said
    later, by `up` itself."""
    gated = _launched if _launched is not None and _launched.gate is not None else None
    if _launched is not None and gated is None:
        return None
    record = planned(config, the_plan)
    if record is None:
        discard()
        return None
    from devstack.errors import DevstackError
    from devstack.system import safefs

    try:
        safefs.ensure_dir(config.state_dir)  # for its start lock
        if not _free_to_start(record, need_folders=False):
            discard()
            return None
        prepare()  # what `up` does next anyway: the socket folders exist
        if gated is not None:
            if _open_gate(gated, record, the_plan.facts.app_python.gunicorn):
                return gated
            _stop(gated)
        return _spawn(record, "plan")
    except (OSError, ValueError, KeyError, DevstackError):  # a planted link: `up` says it itself
        discard()
        return None


def applicable(gated_env: Mapping[str, str], env: Mapping[str, str]) -> bool:
    """Whether a gunicorn started with gated_env becomes one started with env by setting its
    variables: none that is read at start differs."""
    names = (set(gated_env) | set(env)) - {GATE} - APPLIED_AT_GATE
    at_start = [n for n in names if n.startswith(READ_AT_START) or n in READ_AT_START_NAMES]
    return all(gated_env.get(n) == env.get(n) for n in at_start)


def _open_gate(gated: HeadStart, record: Mapping[str, Any], gunicorn: tuple[int, ...] | None) -> bool:
    """Hand the gated gunicorn the plan's command line and environment (what Child.start would
    spawn), if it can become that one; False: it could not, and its gate is still shut."""
    argv, cwd, env = _command(record)
    same_start = argv[: len(gated.argv)] == gated.argv and cwd == gated.cwd
    # gunicorn >= 20.1 takes the app from a config file (wsgi_app)
    if not same_start or (gunicorn or (0,)) < (20, 1) or not applicable(gated.env, env):
        return False
    if gated.proc.poll() is not None:
        return False
    from pathlib import Path

    from devstack.system import safefs

    # The doctor's variables only: the app's own values (a .env secret) are never written down.
    told = {k: v for k, v in env.items() if k.startswith(("DEVSTACK", "GUNICORN_")) or k == "WEB_CONCURRENCY"}
    state = {"pid": gated.proc.pid, "argv": argv, "env": told}
    safefs.write_text(Path(record["state_dir"]) / GATE_RECORD, json.dumps(state), mode=0o600)
    message = memoryview(json.dumps({"argv": argv, "env": env}).encode())
    fd, gated.gate = gated.gate, None
    assert fd is not None
    try:
        while message:
            message = message[os.write(fd, message) :]
    except OSError:  # it died meanwhile: Child.start spawns the plan's
        return False
    finally:
        os.close(fd)
    gated.argv, gated.env, gated.source = argv, env, "plan"
    gated.ports = {int(p) for p in _bound_ports(argv)}
    return True


def planned(config: Config, the_plan: Plan) -> dict[str, Any] | None:
    """What the plan's gunicorn is (None: no gunicorn of ours to start early): its command,
    folder, environment, state dir, ports and socket folders."""
    # The one gunicorn, or the first node of several (app.nodes > 1): started early the same way.
    app = next((p for p in the_plan.processes if p.name in ("gunicorn", "gunicorn.1")), None)
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
    }


def _spawn(record: Mapping[str, Any], source: str, pass_fds: tuple[int, ...] = ()) -> HeadStart:
    global _launched
    argv, cwd, env = _command(record)
    proc = spawn.popen(argv, cwd, env, pass_fds)
    _launched = HeadStart(proc, argv, cwd, env, source)
    return _launched


def _command(record: Mapping[str, Any]) -> tuple[list[str], str, dict[str, str]]:
    """A record's argv, folder and whole environment, as Child.start would spawn it."""
    argv, cwd = [str(a) for a in record["argv"]], str(record["cwd"])
    env = {**os.environ, **{str(k): str(v) for k, v in record["env"].items()}}
    env["DEVSTACK_SUPERVISOR_PID"] = str(os.getpid())  # gunicorn_conf.py: PR_SET_PDEATHSIG
    return argv, cwd, env


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
    for host, port in record["ports"]:
        if not ports.can_bind(str(host), int(port)):
            return False
    return not need_folders or all(os.path.isdir(folder) for folder in record["folders"])


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
    global _launched
    from devstack.system import kill

    if _launched is launched:
        _launched = None
    if launched.gate is not None:  # shut: gunicorn_conf.py makes it exit at once
        os.close(launched.gate)
        launched.gate = None
    proc = launched.proc
    kill.stop_group(proc.pid, grace=3.0, exited=lambda: proc.poll() is not None)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
