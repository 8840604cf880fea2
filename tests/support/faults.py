"""Fault injection helpers, shared by tests/faults and benchmarks/fault_figures.py.

Each scenario drives real processes (the devstack CLI, nginx, gunicorn) and returns what it
measured; the tests assert on behaviour, the figures command prints the numbers.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass, field

import psutil

from devstack.stack import probes
from devstack.system import ports
from tests.support.stack import Project, cli_env, wait_for

# -- the stack's processes ---------------------------------------------------------------------


def tree(project: Project) -> list[psutil.Process]:
    """The supervisor recorded in state.json and everything below it."""
    sup = project.state().get("supervisor")
    if not sup:
        return []
    try:
        proc = psutil.Process(sup["pid"])
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.Error:
            continue
    return left


def busy_ports(project: Project) -> list[int]:
    return [
        port
        for host, port in (("127.0.0.1", project.public_port), ("127.0.0.1", project.app_port))
        if not ports.can_bind(host, port)
    ]


def serving(project: Project, path: str = "/health") -> bool:
    try:
        return probes.http_get(project.url + path, timeout=2.0).status == 200
    except OSError:
        return False


def recorded(project: Project, name: str) -> int | None:
    rec = project.state().get("processes", {}).get(name)
    return int(rec["pid"]) if rec else None


def notes(project: Project, source: str) -> list[str]:
    """devstack's own lines about a source (stream code d), oldest first."""
    path = project.state_dir / "logs" / f"{source}.log"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line.split(" ", 2)[2] for line in lines if line.split(" ", 2)[1:2] == ["d"]]


def log_text(project: Project, source: str) -> str:
    try:
        return (project.state_dir / "logs" / f"{source}.log").read_text(errors="replace")
    except OSError:
        return ""


# -- a foreground `devstack up` ------------------------------------------------------------------


@dataclass
class Foreground:
    """`devstack up` in the foreground, its output drained (a full pipe would block the stack)."""

    proc: subprocess.Popen[bytes]
    master: int | None = None  # the pty master when it runs on a terminal
    chunks: list[bytes] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _closing: threading.Event = field(default_factory=threading.Event)

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def _drain(self, fd: int) -> None:
        while not self._closing.is_set():
            # select with a timeout: a close() while this thread sits in read() would not
            # release the pty, so the terminal would never hang up.
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def hang_up(self) -> None:
        """Close the terminal: the kernel sends SIGHUP to the session (as closing a window)."""
        assert self.master is not None and self._reader is not None
        self._closing.set()
        self._reader.join(timeout=5)
        os.close(self.master)
        self.master = None


def start_foreground(project: Project, on_pty: bool = False, env: dict[str, str] | None = None) -> Foreground:
    argv = [sys.executable, "-m", "devstack", "up"]
    env = env or cli_env()
    if not on_pty:
        proc = subprocess.Popen(
            argv,
            cwd=project.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        fg = Foreground(proc)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
    else:
        master, slave = pty.openpty()

        def controlling_tty() -> None:
            # A session of its own with the pty as its controlling terminal, like a shell's.
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen(
            argv,
            cwd=project.root,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=controlling_tty,
            close_fds=True,
        )
        os.close(slave)
        fg = Foreground(proc, master=master)
        fd = master
    fg._reader = threading.Thread(target=fg._drain, args=(fd,), daemon=True)
    fg._reader.start()
    return fg


def wait_status(project: Project, status: str = "ready", timeout: float = 60) -> bool:
    return wait_for(lambda: project.state().get("status") == status, timeout=timeout)


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class Cycle:
    seconds: float
    left: list[int]  # PIDs of the stack still alive after down
    busy: list[int]  # ports still taken after down


def up_down_cycle(project: Project) -> Cycle:
    started = time.perf_counter()
    project.up_detached()
    procs = tree(project)
    result = project.down()
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    left = [p.pid for p in alive(procs)]
    return Cycle(seconds, left, busy_ports(project))


@dataclass
class Recovery:
    target: str  # gunicorn master | gunicorn worker | nginx master
    first_retry: float  # kill -> the replacement process exists (s)
    serving: float  # kill -> GET /health through nginx is 200 again, from the new process (s)
    told: list[str]  # what the logs said


def _new_pid(getter: object, old: int, timeout: float) -> int | None:
    found: list[int] = []

    def check() -> bool:
        pid = getter()  # type: ignore[operator]
        if pid is not None and pid != old:
            found.append(pid)
            return True
        return False

    wait_for(check, timeout=timeout, interval=0.005)
    return found[0] if found else None


def kill_and_recover(project: Project, target: str, timeout: float = 20) -> Recovery:
    """kill -9 one process of a running stack; time until it is replaced and serving again."""
    master = recorded(project, "nginx" if target == "nginx master" else "gunicorn")
    assert master is not None
    if target == "gunicorn worker":
        victim = psutil.Process(master).children()[0].pid

        def getter() -> int | None:
            try:
                kids = psutil.Process(master).children()
            except psutil.Error:
                return None
            return kids[0].pid if kids else None
    else:
        victim = master
        name = "nginx" if target == "nginx master" else "gunicorn"

        def getter() -> int | None:
            pid = recorded(project, name)
            return pid if pid is not None and psutil.pid_exists(pid) else None

    before = {src: len(log_text(project, src)) for src in ("gunicorn", "nginx", "nginx.error")}
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    new = _new_pid(getter, victim, timeout)
    assert new is not None, f"{target} was not replaced within {timeout} s"
    first_retry = psutil.Process(new).create_time() - killed_at
    assert wait_for(lambda: serving(project), timeout=timeout, interval=0.005)
    serving_after = time.time() - killed_at
    told = []
    for src, offset in before.items():
        told += [
            ln
            for ln in log_text(project, src)[offset:].splitlines()
            if "SIGKILL" in ln or "restarting" in ln or "next start" in ln
        ]
    return Recovery(target, max(first_retry, 0.0), serving_after, told)


@dataclass
class CrashLoop:
    delays: list[float]  # the "next start in X s" the supervisor announced, in order
    starts: int
    supervisor_cpu: float  # CPU seconds the supervisor used while watching the loop
    wall: float


def watch_crash_loop(project: Project, name: str, seconds: float) -> CrashLoop:
    """The stack runs a process that always fails: watch the supervisor for a while."""
    sup = psutil.Process(project.state()["supervisor"]["pid"])
    cpu0 = sum(sup.cpu_times()[:2])
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu = sum(sup.cpu_times()[:2]) - cpu0
    wall = time.monotonic() - t0
    said = notes(project, name)
    delays = [float(line.split()[3]) for line in said if line.startswith("next start in")]
    starts = sum(1 for line in said if line == "restarting")
    return CrashLoop(delays, starts, cpu, wall)


# -- traversal -------------------------------------------------------------------------------------

SECRET = "devstack-fault-secret-7f3a9c"


def traversal_paths(prefix: str) -> list[str]:
    """Ways out of the static folder: plain, encoded, double-encoded, backslashes, symlinks."""
    bare = prefix.rstrip("/")  # /static
    dots = ["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "..%00"]
    seps = ["/", "%2f", "%2F", "%5c", "\\", "%252f"]
    targets = [".env", "app.py", "devstack.toml", "secret.txt"]
    paths = []
    for dot in dots:
        for sep in seps:
            for target in targets:
                paths.append(f"{bare}/{dot}{sep}{target}")  # /static/../.env
                paths.append(f"{bare}{dot}{sep}{target}")  # /static../.env (the alias bug)
    for target in targets:
        paths += [
            f"{bare}../{target}",
            f"{bare}/../../{target}",
            f"{bare}/./../{target}",
            f"{bare}//../{target}",
            f"{bare}/css/../../{target}",
            f"{bare}/%2e%2e/%2e%2e/{target}",
            f"/{target}",
            f"//{target}",
            f"{bare}/link-out",
            f"{bare}/dir-out/{target}",
            f"{bare}/link-dir/{target}",
        ]
    paths += [f"{bare}/", f"{bare}/css/", f"{bare}/dir-out/", f"{bare}../"]
    return sorted(set(paths))


@dataclass
class Attempt:
    path: str
    status: int
    leaked: bool
    listing: bool


def plant_secrets(project: Project) -> None:
    """Files outside the static folder that must never be served, and symlinks pointing at them."""
    (project.root / ".env").write_text(f"SECRET_KEY={SECRET}\n")
    (project.root / "secret.txt").write_text(f"{SECRET}\n")
    static = project.root / "static"
    (static / "link-out").symlink_to(project.root / "secret.txt")
    (static / "dir-out").symlink_to(project.root)
    (static / "link-dir").symlink_to("..")


def try_traversals(project: Project) -> list[Attempt]:
    attempts = []
    app_source = (project.root / "app.py").read_text()
    for path in traversal_paths("/static/"):
        try:
            status, body, location = raw_get(project.public_port, path)
        except OSError as exc:  # a refused or reset connection proves nothing about a leak
            raise AssertionError(f"GET {path!r}: no answer from nginx ({exc})") from exc
        assert status, f"GET {path!r}: nginx closed without an HTTP answer"
        if 300 <= status < 400 and location.startswith("/"):
            # Follow a redirect once: a normalised path must not lead to the file either.
            status2, body2, _ = raw_get(project.public_port, location)
            if status2 == 200:
                status, body = status2, body2
        text = body.decode("utf-8", "replace")
        leaked = (
            SECRET in text or "socketio = SocketIO" in text or (status == 200 and app_source[:200] in text)
        )
        listing = "Index of" in text or 'href="css/"' in text
        attempts.append(Attempt(path, status, leaked, listing))
    return attempts


def raw_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes, str]:
    """GET with the path sent byte for byte (http.client would quote or refuse some of them).

    Returns the status, the body and the Location header ("" if none)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    location = ""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    return status, body, location
