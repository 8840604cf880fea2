"""Test helpers shared by every tier: free ports, a copy of the example app, the real CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.support.require import require

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "chat"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def cli_env(**extra: str) -> dict[str, str]:
    # No VIRTUAL_ENV: an activated venv would be the app's interpreter (project/apppython.py), not ours.
    dropped = ("FORCE_COLOR", "GUNICORN_CMD_ARGS", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["NO_COLOR"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@dataclass
class Project:
    root: Path
    public_port: int
    app_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def config_path(self) -> Path:
        return self.root / "devstack.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / ".devstack"

    def write_config(self, app: str = "", static: str = "", server: str = "", extra: str = "") -> None:
        self.config_path.write_text(
            f'[app]\nwsgi = "app:app"\nreload_extra = ["templates/*.html"]\n{app}\n'
            f"[static]\n{static}\n"
            f'[server]\nlisten = "127.0.0.1:{self.public_port}"\napp_port = {self.app_port}\n{server}\n'
            f"{extra}\n",
            encoding="utf-8",
        )

    def cli(
        self, *args: str, timeout: float = 60, check: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", *args],
            cwd=self.root,
            env=env or cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            stdin=subprocess.DEVNULL,
        )

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state_dir / "state.json").read_text()))
        except (OSError, ValueError):
            return {}

    def up_detached(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = self.cli("up", "--detach", timeout=timeout)
        assert result.returncode == 0, f"up --detach failed:\n{result.stdout}\n{result.stderr}"
        return result

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.cli("down", timeout=60)

    def recorded_pids(self) -> list[int]:
        data = self.state()
        pids = [rec["pid"] for rec in data.get("processes", {}).values()]
        if data.get("supervisor"):
            pids.append(data["supervisor"]["pid"])
        return pids


def init_project(root: Path) -> tuple[Project, str]:
    """The real `devstack init` in root, then only its two port lines moved to free ports:
    the project as a user gets it, runnable beside other tests. Returns it and what init said."""
    public, app = free_ports(2)
    project = Project(root, public, app)
    result = project.cli("init")
    assert result.returncode == 0, result.stderr
    text = project.config_path.read_text()
    text = re.sub(r'(?m)^listen = "127\.0\.0\.1:5000"', f'listen = "127.0.0.1:{public}"', text)
    text = re.sub(r"(?m)^app_port = 5001", f"app_port = {app}", text)
    project.config_path.write_text(text)
    return project, result.stderr


def make_project(base: Path, worker: str = "gthread") -> Project:
    root = base / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    public, app = free_ports(2)
    project = Project(root, public, app)
    project.write_config(app=f'worker = "{worker}"')
    return project


ECHO_APP = """import os
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "mark=" + os.environ.get("MARK", "none")
"""


def echo_project(base: Path, mark: str) -> Project:
    """A one-route app that answers `mark=<MARK>`, MARK set in devstack.toml's [app.env]: what
    a live edit of devstack.toml did is read from what the app serves, not from a log line."""
    root = base / "echo"
    (root / "static").mkdir(parents=True)
    (root / "static" / "site.css").write_text("body {}\n")
    (root / "app.py").write_text(ECHO_APP)
    public, app_port = free_ports(2)
    project = Project(root, public, app_port)
    write_mark(project, mark)
    return project


def write_mark(project: Project, mark: str, server: str = "") -> None:
    project.write_config(server=server, extra=f'[app.env]\nMARK = "{mark}"\n')


def served(project: Project, path: str = "/") -> str:
    """The body the stack serves at path through nginx; "" when nothing answers."""
    import urllib.request

    try:
        with urllib.request.urlopen(project.url + path, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def processes_under(root: Path) -> list[psutil.Process]:
    """Every live process whose command line or cwd mentions the project folder."""
    found = []
    needle = str(root)
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
            if needle in cmd or (proc.info["cwd"] or "").startswith(needle):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def kill_leftovers(root: Path) -> list[int]:
    """Last-resort cleanup after a failed test: only processes tied to this test's folder."""
    procs = processes_under(root)
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
    return [p.pid for p in procs]


def make_full_device(path: Path) -> None:
    """A real full-disk device (a /dev/full node, char 1:7) at path: every write is ENOSPC.

    A node, not a symlink to /dev/full: devstack rightly refuses to write through a link.
    """
    require(os.geteuid() == 0, "needs root to create a device node (the full-disk stand-in)")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))


def memory_split(pid: int) -> dict[str, int]:
    """Resident kB of one process by kind of mapping, from /proc/PID/smaps.

    glibc gives threads their own malloc arenas: 64 MB reservations, a read-write head and a
    no-access tail. Telling them apart from the main heap and from Python's own 256 kB arenas
    says whether growth is objects kept alive or memory the allocator holds on to.
    """
    out = {"heap": 0, "thread arenas": 0, "other anon": 0, "files": 0}
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return out
    maps: list[tuple[int, int, str, str, int]] = []  # start, end, perms, name, rss kB
    for line in text.splitlines():
        head = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
        if head:
            start, end, perms, name = head.groups()
            maps.append((int(start, 16), int(end, 16), perms, name, 0))
        elif line.startswith("Rss:") and maps:
            a, b, perms, name, _ = maps[-1]
            maps[-1] = (a, b, perms, name, int(line.split()[1]))
    arena = 64 * 1024 * 1024
    for i, (a, b, _perms, name, rss) in enumerate(maps):
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        if name == "[heap]":
            out["heap"] += rss
        elif name:
            out["files"] += rss
        elif a % arena == 0 and nxt and nxt[0] == b and nxt[2] == "---p" and nxt[1] - a == arena:
            out["thread arenas"] += rss
        else:
            out["other anon"] += rss
    return out
