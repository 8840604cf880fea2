"""Issue #25: the classic Flask-SocketIO setup runs unedited, and a failed `up` is never silent.

The classic guide's app venv holds flask-socketio, eventlet and gunicorn, and its app does
`SocketIO(app)`: Flask-SocketIO then picks eventlet, which gunicorn >= 26 cannot run. Here the
app has its own `.venv` (examples/classic/requirements.txt, from the configured package index),
devstack runs from this checkout, and nothing is mocked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import socketio

from devstack.system import kill
from tests.support.doctor import doctor, finding
from tests.support.stack import REPO, Project, free_ports, kill_leftovers, processes_under, wait_for

pytestmark = pytest.mark.needs_nginx

CLASSIC = REPO / "examples" / "classic"
NOTE = (
    "note: app.py:8: SocketIO(app) names no async_mode, so Flask-SocketIO would pick eventlet "
    "(installed), which the gthread worker cannot run: devstack has it use threading — "
    'make it explicit with SocketIO(app, async_mode="threading")'
)


@pytest.fixture(scope="module")
def classic_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The classic app's own venv, made once for this module: `pip install -r requirements.txt`."""
    venv = tmp_path_factory.mktemp("classic-venv") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    pip: list[str | Path] = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "-r",
        CLASSIC / "requirements.txt",
    ]
    subprocess.run(pip, check=True, timeout=600, capture_output=True)
    return venv


@pytest.fixture
def classic(tmp_path: Path, classic_venv: Path) -> Iterator[Project]:
    """examples/classic with that venv as its .venv, after `devstack init`, moved to free ports."""
    root = tmp_path / "classic"
    shutil.copytree(CLASSIC, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__", ".venv"))
    (root / ".venv").symlink_to(classic_venv)
    public, app = free_ports(2)
    project = Project(root, public, app)
    init = project.cli("init")
    assert init.returncode == 0, init.stderr
    text = project.config_path.read_text()
    text = re.sub(r'(?m)^listen = "127\.0\.0\.1:5000"', f'listen = "127.0.0.1:{public}"', text)
    text = re.sub(r"(?m)^app_port = 5001", f"app_port = {app}", text)
    assert str(public) in text and str(app) in text
    project.config_path.write_text(text)
    yield project
    project.down()
    left = processes_under(root)
    killed = kill_leftovers(root)
    assert not left, f"processes left behind: {killed}"


def test_the_classic_app_runs_unedited_with_websockets_through_nginx(classic: Project) -> None:
    source = (classic.root / "app.py").read_bytes()
    assert b"socketio = SocketIO(app)\n" in source and b"async_mode=" not in source  # the classic app
    up = classic.cli("up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    # One line, once: what devstack did and how to say it in the code.
    assert up.stderr.count(NOTE) == 1, up.stderr
    assert "warning" not in up.stderr, up.stderr
    client = socketio.Client(reconnection=False)
    received: list[object] = []
    client.on("echo", received.append)
    client.connect(classic.url, transports=["websocket"], wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        client.emit("echo", {"hello": "classic"})
        assert wait_for(lambda: received, timeout=10)
        assert received == [{"hello": "classic"}]
    finally:
        client.disconnect()
    assert (classic.root / "app.py").read_bytes() == source  # unedited
    log = (classic.state_dir / "logs" / "gunicorn.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_an_app_asking_for_eventlet_is_one_line_naming_file_and_line(classic: Project) -> None:
    app = classic.root / "app.py"
    app.write_text(app.read_text().replace("SocketIO(app)", 'SocketIO(app, async_mode="eventlet")'))
    up = classic.cli("up", "--detach")
    assert up.returncode == 1, up.stdout + up.stderr
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in up.stderr, up.stderr
    assert re.match(
        r"devstack: error: app\.py:8: SocketIO\(app, async_mode=\"eventlet\"\) needs gunicorn's eventlet "
        r"worker and gunicorn 2[6-9][.\d]* has no eventlet worker \(removed in 26\.0\) — use "
        r"SocketIO\(app, async_mode='threading'\)",
        lines[0],
    ), lines[0]
    assert "'gunicorn<26'" in lines[0] and 'worker = "eventlet"' in lines[0]
    assert classic.state().get("status") is None  # nothing started
    code, report = doctor("gunicorn.plan", cwd=classic.root)
    check = finding(report, "gunicorn.plan")
    assert check["status"] == "error" and "app.py:8" in check["finding"], check
    assert code == 1


def test_a_failed_proof_says_its_cause_and_doctor_reports_it(classic: Project) -> None:
    app = classic.root / "app.py"
    app.write_text(
        app.read_text().replace("SocketIO(app)", 'SocketIO(app, async_mode="threading")')
        + '\n\n@socketio.on("connect")\ndef refuse():\n'
        + '    raise RuntimeError("the session store is not configured")\n'
    )
    up = classic.cli("up", "--detach", timeout=90)
    assert up.returncode == 4, up.stdout + up.stderr
    assert up.stderr.strip().splitlines()[-1] == (
        "devstack: error: the stack did not become ready: Socket.IO over websocket through nginx "
        "failed: websocket failed: timed out — gunicorn logged: RuntimeError: the session store is "
        "not configured"
    ), up.stderr
    assert classic.state()["status"] == "failed"  # kept for doctor; the stack itself stopped
    code, report = doctor(cwd=classic.root)
    check = finding(report, "gunicorn.last-up")
    assert check["status"] == "error", check
    assert "RuntimeError: the session store is not configured" in check["finding"], check
    assert code == 1
    human = classic.cli("doctor")
    assert human.returncode == 1 and "no issues found" not in human.stdout


def test_an_old_worker_held_by_a_websocket_is_stopped_after_a_reload(classic: Project) -> None:
    up = classic.cli("up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    master = psutil.Process(classic.state()["processes"]["gunicorn"]["pid"])
    client = socketio.Client(reconnection=False)
    client.connect(classic.url, transports=["websocket"], wait_timeout=10)
    try:
        old = master.children()
        assert len(old) == 1
        app = classic.root / "app.py"
        app.write_text(app.read_text() + "\n# an edit\n")
        # The reload forks a new worker; the old one, holding the open websocket, is stopped
        # after the grace period (3.5 s): measured, it otherwise ran on beside the new one.
        assert wait_for(lambda: not any(kill.alive(p) for p in old), timeout=10), "old worker still running"

        def live_workers() -> list[psutil.Process]:  # an exited one the master has not reaped yet is gone
            alive = []
            for child in master.children():
                try:
                    if child.status() != psutil.STATUS_ZOMBIE:
                        alive.append(child)
                except psutil.NoSuchProcess:
                    pass
            return alive

        assert wait_for(lambda: len(live_workers()) == 1, timeout=10), master.children()
        new = live_workers()
        assert len(new) == 1 and new[0].pid != old[0].pid
        log = classic.state_dir / "logs" / "gunicorn.log"
        wanted = f"old worker (pid {old[0].pid}) still running 3.5 s after the reload"
        assert wait_for(lambda: wanted in log.read_text(errors="replace"), timeout=5)
    finally:
        client.disconnect()
