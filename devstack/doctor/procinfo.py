"""Gunicorn's effective settings, read from the running master's command line and environment.

Precedence as gunicorn applies it: config file < GUNICORN_CMD_ARGS < command line.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from devstack.errors import DevstackError
from devstack.project import apppython
from devstack.speed import GATE, GATE_RECORD
from devstack.stack import probes
from devstack.system import runner, safefs

# option -> (setting name, takes a value)
OPTIONS: dict[str, tuple[str, bool]] = {
    "-w": ("workers", True),
    "--workers": ("workers", True),
    "-k": ("worker_class", True),
    "--worker-class": ("worker_class", True),
    "--threads": ("threads", True),
    "-b": ("bind", True),
    "--bind": ("bind", True),
    "--reload": ("reload", False),
    "--reload-engine": ("reload_engine", True),
    "--preload": ("preload_app", False),
    "--chdir": ("chdir", True),
    "-c": ("config", True),
    "--config": ("config", True),
    "--error-logfile": ("errorlog", True),
    "--log-file": ("errorlog", True),
    "-t": ("timeout", True),
    "--timeout": ("timeout", True),
    "--max-requests": ("max_requests", True),
}


@dataclass
class Gunicorn:
    pid: int
    cmdline: list[str]
    settings: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where it was set
    app: str = ""  # the WSGI app argument, module:attr
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    exe: str = ""
    live_workers: int = 0
    worker_started: list[tuple[int, float]] = field(default_factory=list)  # (pid, start time), oldest first

    @property
    def command(self) -> str:
        return shlex.join(self.cmdline)

    def get(self, name: str, default: str = "") -> str:
        return self.settings.get(name, default)

    @property
    def worker_class(self) -> str:
        raw = self.get("worker_class", "sync")
        short = {
            "geventwebsocket.gunicorn.workers.GeventWebSocketWorker": "gevent",
            "gevent_websocket": "gevent",
        }
        return short.get(raw, raw.rsplit(".", 1)[-1].lower().replace("worker", "") or raw)

    @property
    def workers(self) -> int:
        try:
            return int(self.get("workers", "1"))
        except ValueError:
            return 1

    @property
    def app_dir(self) -> Path:
        base = Path(self.cwd or ".")
        chdir = self.get("chdir")
        return (base / chdir) if chdir else base

    def can_import(self, module: str, run: runner.Run = runner.run) -> bool:
        """Whether the interpreter running this process can import module."""
        if not self.exe:
            return False
        return run([self.exe, "-c", f"import {module}"], timeout=20).ok

    def version(self, run: runner.Run = runner.run) -> tuple[int, ...] | None:
        """The gunicorn version of the interpreter that runs this process."""
        if not self.exe:
            return None
        result = run([self.exe, "-c", "import gunicorn; print(gunicorn.__version__)"], timeout=20)
        return apppython.parse_version(result.out.strip())


def parse_args(argv: list[str], settings: dict[str, str], sources: dict[str, str], origin: str) -> str:
    """Apply gunicorn options from argv; returns the positional WSGI app if any."""
    app = ""
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, _, inline = arg.partition("=")
        if name in OPTIONS:
            setting, takes = OPTIONS[name]
            if takes:
                value = inline or (argv[i + 1] if i + 1 < len(argv) else "")
                i += 0 if inline else 1
            else:
                value = "true"
            settings[setting] = value
            sources[setting] = f"{origin}: {arg if inline or not takes else arg + ' ' + value}"
        elif arg.startswith("-k") and len(arg) > 2:
            settings["worker_class"], sources["worker_class"] = arg[2:], f"{origin}: {arg}"
        elif arg.startswith("-w") and len(arg) > 2:
            settings["workers"], sources["workers"] = arg[2:], f"{origin}: {arg}"
        elif not arg.startswith("-") and (":" in arg or i == len(argv) - 1):
            app = arg
        i += 1
    return app


def literal_assignments(tree: ast.Module) -> Iterator[tuple[str, str, ast.Assign]]:
    """(name, value as a setting string, the node) of each literal top-level `name = value` of
    a gunicorn config file: what it sets without running it."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            yield node.targets[0].id, "true" if value is True else str(value), node


def read_config_file(path: Path, settings: dict[str, str], sources: dict[str, str]) -> None:
    """Literal top-level assignments of a gunicorn.conf.py (never executed)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    for key, value, node in literal_assignments(tree):
        settings[key] = value
        sources[key] = f"{path}:{node.lineno}"


def workers_of(pid: int) -> list[tuple[int, float]]:
    """A gunicorn master's live workers now: (pid, start time), oldest first ([] when it is gone)."""
    try:
        children = [c for c in psutil.Process(pid).children() if is_gunicorn(c)]
        return sorted(((c.pid, c.create_time()) for c in children), key=lambda w: w[1])
    except psutil.Error:
        return []


def gunicorn_args(cmdline: list[str]) -> list[str]:
    """The part of argv after the gunicorn entry point (python -m gunicorn / gunicorn)."""
    for i, arg in enumerate(cmdline):
        if arg == "-m" and i + 1 < len(cmdline) and cmdline[i + 1] == "gunicorn":
            return cmdline[i + 2 :]
        if Path(arg).name == "gunicorn":
            return cmdline[i + 1 :]
    return cmdline[1:]


def is_gunicorn(proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return any(Path(a).name == "gunicorn" or a == "gunicorn" for a in cmd[:4]) or proc.name().startswith(
        "gunicorn"
    )


def master_of(pid: int) -> psutil.Process | None:
    """The gunicorn master for a pid (a worker's parent is the master)."""
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return None
    if not is_gunicorn(proc):
        return None
    parent = proc.parent()
    while parent is not None and is_gunicorn(parent):
        proc, parent = parent, parent.parent()
    return proc


def describe(proc: psutil.Process, state_dir: Path | None = None) -> Gunicorn:
    cmdline = proc.cmdline()
    info = Gunicorn(pid=proc.pid, cmdline=cmdline)
    try:
        info.cwd = proc.cwd()
        info.env = proc.environ()
        exe = proc.exe()
        first = cmdline[0] if cmdline else ""
        # A venv's python is a link to the base interpreter: /proc's exe loses the venv (and its
        # site-packages, gunicorn included). The path it was started by keeps it.
        if (
            os.path.isabs(first)
            and os.path.isfile(first)
            and os.path.realpath(first) == os.path.realpath(exe)
        ):
            exe = first
        info.exe = exe
        workers = [c for c in proc.children() if is_gunicorn(c)]
        info.live_workers = len(workers)
        info.worker_started = sorted(((c.pid, c.create_time()) for c in workers), key=lambda w: w[1])
    except psutil.Error:
        pass
    gated = gate_record(state_dir, proc.pid) if GATE in info.env else None
    if gated is not None:  # devstack's own, started gated: its settings came through the pipe
        info.cmdline = cmdline = gated["argv"]
        info.env = {**info.env, **gated["env"]}
    args = gunicorn_args(cmdline)
    # Config file first (lowest precedence), then GUNICORN_CMD_ARGS, then the command line.
    probe: dict[str, str] = {}
    parse_args(args, probe, {}, "command line")
    conf = probe.get("config") or "gunicorn.conf.py"
    conf_path = Path(info.cwd or ".") / conf
    if conf_path.is_file():
        read_config_file(conf_path, info.settings, info.sources)
    env_args = info.env.get("GUNICORN_CMD_ARGS", "")
    if env_args.strip():
        parse_args(shlex.split(env_args), info.settings, info.sources, "GUNICORN_CMD_ARGS")
    if "WEB_CONCURRENCY" in info.env and "workers" not in info.settings:
        info.settings["workers"] = info.env["WEB_CONCURRENCY"]
        info.sources["workers"] = f"WEB_CONCURRENCY={info.env['WEB_CONCURRENCY']}"
    info.app = parse_args(args, info.settings, info.sources, "command line")
    return info


def gate_record(state_dir: Path | None, pid: int) -> dict[str, Any] | None:
    """What devstack's gated gunicorn pid was given (speed/headstart.py), from state_dir; None
    for another process, no record, or a planted link."""
    if state_dir is None:
        return None
    try:
        record = json.loads(safefs.read_text(state_dir / GATE_RECORD))
    except (OSError, ValueError, DevstackError):
        return None
    if not isinstance(record, dict) or record.get("pid") != pid:
        return None
    return record


def find(app_url: str | None, state_dir: Path | None = None) -> Gunicorn | None:
    """The gunicorn master holding the address nginx proxies to (a TCP port or a unix socket);
    state_dir: devstack's, whose gated gunicorn's settings are read from there.

    Never "the only gunicorn running": an unrelated gunicorn must not change the verdict."""
    if app_url is None:
        return None
    if probes.is_unix(app_url):
        wanted = os.path.normpath(probes.unix_target(app_url)[0])
        try:
            conns = psutil.net_connections(kind="unix")
        except (psutil.AccessDenied, OSError):
            return None
        pids = [
            c.pid for c in conns if c.pid is not None and c.laddr and os.path.normpath(str(c.laddr)) == wanted
        ]
    else:
        port = probes.split_url(app_url)[1]
        try:
            tcp = psutil.net_connections(kind="tcp")
        except (psutil.AccessDenied, OSError):
            return None
        pids = [
            c.pid
            for c in tcp
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid is not None
        ]
    for pid in sorted(set(pids)):
        master = master_of(pid)
        if master is not None:
            return describe(master, state_dir)
    return None
