"""Logs from a real stack: live view, `devstack logs` after the fact and live, Procfile processes.

Real gunicorn, nginx and extra processes; every wait is a poll with a generous limit, never a
timed assertion.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from devstack.stack import probes
from tests.support.stack import Project, cli_env, make_full_device, wait_for

pytestmark = pytest.mark.needs_nginx

TICKER = """\
import os, sys, time
print("secret length", len(os.environ.get("SECRET", "")), flush=True)
print("\\x1b[32mcolored\\x1b[0m on stderr", file=sys.stderr, flush=True)
for i in range(5):
    print("tick", i, flush=True)
time.sleep(3600)
"""

PRODUCER = """\
import os, sys, time
name, count = sys.argv[1], int(sys.argv[2])
for start in range(0, count, 100):
    block = "".join(f"{name} {i:07d} short line\\n" for i in range(start, start + 100))
    os.write(1, block.encode())
time.sleep(3600)
"""
SECRET = "hunter2-s3cret"
PREFIX = re.compile(r"^\d\d:\d\d:\d\d \S+ +[|!*] ")


@contextmanager
def foreground(project: Project, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`devstack up` in the foreground, its live view going to a file; stopped like Ctrl-C."""
    screen = project.root / "screen.out"
    with open(screen, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", *args],
            cwd=project.root,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
    try:
        ready = wait_for(
            lambda: project.state().get("status") == "ready" or proc.poll() is not None, timeout=60
        )
        assert ready and proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield proc, screen
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()


def lines_of(text: str, source: str) -> list[str]:
    head = re.compile(rf"^\d\d:\d\d:\d\d {re.escape(source)} +[|!*] ")
    return [line for line in text.splitlines() if head.match(line)]


def test_live_view_procfile_dotenv_and_logs_after_stop(project: Project) -> None:
    (project.root / "ticker.py").write_text(TICKER)
    (project.root / "Procfile").write_text(f"ticker: {sys.executable} ticker.py\n")
    (project.root / ".env").write_text(f"SECRET={SECRET}\n")
    project.write_config(
        extra=f'[processes]\nother = "{sys.executable} -u -c \\"print(42)'
        f'; import time; time.sleep(3600)\\""\n'
    )
    with foreground(project) as (_, screen):
        assert probes.http_get(project.url + "/live-marker").status == 404
        assert wait_for(
            lambda: "live-marker" in screen.read_text() and "tick 4" in screen.read_text(), timeout=30
        )
        pids = [
            rec["pid"] for name, rec in project.state()["processes"].items() if name in ("ticker", "other")
        ]
        assert len(pids) == 2
    live = screen.read_text()
    assert "\x1b" not in live  # NO_COLOR (set by cli_env): not even the child's own colors
    for source in ("gunicorn", "nginx.access", "ticker", "other", "devstack"):
        assert lines_of(live, source), f"no {source} lines in the live view:\n{live}"
    assert [PREFIX.sub("", ln) for ln in lines_of(live, "ticker") if "| tick" in ln] == [
        f"tick {i}" for i in range(5)
    ]  # order within a process is kept
    assert any(re.search(r"ticker +! colored on stderr$", ln) for ln in live.splitlines())
    assert "secret length 14" in live  # .env reached the process ...
    for path in [screen, *project.state_dir.rglob("*")]:  # ... and its value is printed nowhere
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for pid in pids:  # stopped with the stack: no orphan (the fixture checks the whole tree too)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    # After the stack stopped: the last 5 gunicorn lines, as stored.
    result = project.cli("logs", "gunicorn", "-n", "5")
    assert result.returncode == 0, result.stderr
    stored = (project.state_dir / "logs" / "gunicorn.log").read_text().splitlines()[-5:]
    shown = result.stdout.splitlines()
    assert len(shown) == 5
    assert [PREFIX.sub("", line, count=1) for line in shown] == [s.split(" ", 2)[2] for s in stored]
    assert all(re.match(r"^\d\d:\d\d:\d\d gunicorn +[|!*] ", line) for line in shown)


def test_600000_lines_in_600000_out(project: Project) -> None:
    count = 200_000
    (project.root / "producer.py").write_text(PRODUCER)
    (project.root / "Procfile").write_text(
        "".join(f"p{i}: {sys.executable} producer.py p{i} {count}\n" for i in (1, 2, 3))
    )
    logs = project.state_dir / "logs"

    def stored(name: str) -> int:
        return sum(p.read_bytes().count(b"short line\n") for p in logs.glob(f"{name}.log*"))

    with foreground(project) as (_, screen):
        assert wait_for(lambda: all(stored(f"p{i}") == count for i in (1, 2, 3)), timeout=120)
    live = screen.read_bytes()
    for i in (1, 2, 3):
        numbers = [
            int(n)
            for n in re.findall(rb"^\d\d:\d\d:\d\d p%d +\| p%d (\d{7}) short line$" % (i, i), live, re.M)
        ]
        assert numbers == list(range(count)), f"p{i}: {len(numbers)} lines on screen"
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "logs", f"p{i}", "--no-prefix"],
            cwd=project.root,
            env=cli_env(),
            capture_output=True,
            check=True,
        )
        assert result.stdout == b"".join(b"p%d %07d short line\n" % (i, n) for n in range(count))


class Follow:
    """`devstack logs -f` in the background, its lines collected."""

    def __init__(self, project: Project, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "logs", "-f", *args],
            cwd=project.root,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, needle: str, timeout: float = 30) -> bool:
        return wait_for(lambda: any(needle in line for line in self.lines), timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        self.thread.join(timeout=10)
        return code


def test_follow_across_gunicorn_restart_and_rotation(project: Project) -> None:
    project.write_config(extra="[logs]\nmax_bytes = 4096\nbackups = 2\n")
    project.up_detached()
    follow = Follow(project)
    try:
        assert probes.http_get(project.url + "/after-start").status == 404
        assert follow.saw("/after-start")

        old = project.state()["processes"]["gunicorn"]["pid"]
        os.kill(old, signal.SIGKILL)
        assert wait_for(lambda: project.state()["processes"]["gunicorn"]["pid"] != old, timeout=30)
        assert wait_for(lambda: probes.http_get(project.url + "/after-restart").status == 404, timeout=30)
        assert follow.saw("gunicorn killed by SIGKILL")
        assert follow.saw("/after-restart")

        access = project.state_dir / "logs" / "nginx.access.log"
        inode = access.stat().st_ino
        i = 0
        while access.exists() and access.stat().st_ino == inode:
            probes.http_get(f"{project.url}/filler-{i}")
            i += 1
            assert i < 1000, "nginx.access.log never rotated"
        assert probes.http_get(project.url + "/after-rotation").status == 404
        assert follow.saw("/after-rotation")
        assert (project.state_dir / "logs" / "nginx.access.log.1").exists()
        fillers = [ln for ln in follow.lines if "nginx.access" in ln and "/filler-" in ln]
        assert len(fillers) == i  # nothing lost or doubled across the rotation
    finally:
        assert follow.stop() == 0


def test_since_grep_json_and_color_policy(stack: Project) -> None:
    before = datetime.now(UTC).isoformat()
    wait_for(lambda: datetime.now(UTC).isoformat() > before, timeout=1)  # a later microsecond
    assert probes.http_get(stack.url + "/grep-me-7").status == 404
    logs = stack.state_dir / "logs"
    assert wait_for(
        lambda: (
            b"grep-me-7" in (logs / "gunicorn.log").read_bytes()
            and b"grep-me-7" in (logs / "nginx.access.log").read_bytes()
        )
    )

    grep = stack.cli("logs", "--grep", "grep-me-[0-9]")
    assert grep.returncode == 0, grep.stderr
    assert len(grep.stdout.splitlines()) == 2
    assert {line.split()[1] for line in grep.stdout.splitlines()} == {"gunicorn", "nginx.access"}

    since = stack.cli("logs", "--since", before).stdout
    assert "grep-me-7" in since and "Booting worker" not in since
    assert "Booting worker" in stack.cli("logs", "--since", "1h").stdout
    assert stack.cli("logs", "--since", "2999-01-01T00:00:00Z").stdout == ""
    assert stack.cli("logs", "--since", "someday").returncode == 2

    rows = [json.loads(line) for line in stack.cli("logs", "--json", "nginx").stdout.splitlines()]
    assert rows and all(set(row) == {"time", "process", "stream", "line"} for row in rows)
    assert {row["process"] for row in rows} <= {"nginx.access", "nginx.error"}
    assert any(row["line"].startswith('127.0.0.1 "GET /grep-me-7 ') for row in rows)
    times = [row["time"] for row in rows]
    assert times == sorted(times)

    plain = stack.cli("logs")
    assert plain.stdout and "\x1b" not in plain.stdout  # NO_COLOR=1 in cli_env
    env = {k: v for k, v in cli_env().items() if k != "NO_COLOR"}
    assert "\x1b[" in stack.cli("logs", "--color", "always").stdout
    assert "\x1b[" in stack.cli("logs", env={**env, "FORCE_COLOR": "1"}).stdout
    assert "\x1b" not in stack.cli("logs", env={**env, "FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout
    assert "\x1b" not in stack.cli("logs", env=env).stdout  # auto, and stdout is a pipe

    unknown = stack.cli("logs", "gunicron")
    assert unknown.returncode == 2 and "no process named gunicron" in unknown.stderr


def test_a_full_log_disk_warns_and_the_stack_still_runs(project: Project) -> None:
    logs = project.state_dir / "logs"
    logs.mkdir(parents=True)
    make_full_device(logs / "gunicorn.log")
    project.up_detached()
    assert probes.http_get(project.url + "/").status == 200
    assert wait_for(lambda: b"cannot write logs" in (logs / "supervisor.out").read_bytes())
    assert b"GET / " in (logs / "nginx.access.log").read_bytes()  # the other files go on
    out = (logs / "supervisor.out").read_text()
    assert out.count("cannot write logs") == 1 and "No space left on device" in out
    assert "works again" not in out


def test_children_keep_their_colors_unless_color_is_off(project: Project) -> None:
    # Like most tools: color only when asked (FORCE_COLOR) or on a terminal; a pipe is neither.
    (project.root / "painter.py").write_text(
        "import os, sys, time\n"
        "print('\\x1b[32mgreen\\x1b[0m' if os.environ.get('FORCE_COLOR') or sys.stdout.isatty()"
        " else 'plain', flush=True)\ntime.sleep(3600)\n"
    )
    (project.root / "Procfile").write_text(f"painter: {sys.executable} painter.py\n")
    env = {k: v for k, v in cli_env().items() if k != "NO_COLOR"}
    log = project.state_dir / "logs" / "painter.log"
    for flag, expected, stripped in (("auto", "\x1b[32mgreen\x1b[0m", "green"), ("never", "plain", "plain")):
        assert project.cli("up", "--detach", "--color", flag, env=env).returncode == 0
        assert wait_for(lambda: log.exists() and log.read_bytes().count(b"\n") > 0)
        shown = project.cli("logs", "painter", "--no-prefix", "--color", "always", env=env)
        assert shown.stdout.splitlines()[-1].startswith(expected)  # (+ devstack's line-end reset)
        # auto on a pipe: the codes are stripped, the text is the one the process wrote
        assert project.cli("logs", "painter", "--no-prefix", env=env).stdout.splitlines()[-1] == stripped
        project.down()
        log.unlink()
