"""kill -9 of each process the stack runs: it comes back, the logs say so; crash loops back off."""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest

from tests.support.faults import kill_and_recover, notes, recorded, serving, wait_status, watch_crash_loop
from tests.support.stack import Project, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


@pytest.mark.parametrize("target", ["gunicorn master", "gunicorn worker", "nginx master"])
def test_kill9_recovers_and_logs_it(stack: Project, target: str) -> None:
    recovery = kill_and_recover(stack, target)
    assert serving(stack)
    if target == "gunicorn worker":
        # gunicorn's master replaces its own worker and says so.
        assert any("SIGKILL" in line for line in recovery.told), recovery.told
    else:
        name = target.split()[0]
        said = notes(stack, name)
        assert f"{name} killed by SIGKILL" in said, said
        # The first retry comes after the shortest backoff, and the log announces it.
        assert "next start in 0.5 s" in said, said
        assert "restarting" in said, said
    assert stack.state()["status"] == "ready"


def test_repeated_kills_keep_recovering(stack: Project) -> None:
    for _ in range(3):
        for target in ("gunicorn master", "nginx master", "gunicorn worker"):
            kill_and_recover(stack, target)
    assert serving(stack)


def test_crash_loop_backs_off_and_does_not_spin(project: Project) -> None:
    (project.root / "crash.py").write_text(
        "import sys\nprint('ValueError: boom', file=sys.stderr)\nsys.exit(3)\n"
    )
    project.write_config(extra=f"[processes]\ncrasher = '{sys.executable} crash.py'\n")
    project.up_detached()
    loop = watch_crash_loop(project, "crasher", seconds=8.0)
    # Exponential backoff: each announced delay doubles (0.5, 1, 2, 4, ...) up to the cap.
    assert loop.delays[:4] == [0.5, 1.0, 2.0, 4.0], loop.delays
    assert all(b == min(a * 2, 30.0) for a, b in zip(loop.delays, loop.delays[1:], strict=False))
    # Reported: the exit code and the process's last error line.
    said = notes(project, "crasher")
    assert any("crasher exited with code 3 — ValueError: boom" in line for line in said), said
    # Never spins a core: the supervisor sleeps between attempts (a busy loop would use ~100%).
    assert loop.supervisor_cpu < 0.25 * loop.wall, loop
    # The rest of the stack serves on regardless.
    assert serving(project)


def test_app_that_cannot_boot_is_reported_and_restarted_on_fix(project: Project) -> None:
    app = project.root / "app.py"
    good = app.read_text()
    project.up_detached()
    app.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    assert wait_for(
        lambda: any(
            "App failed to load" in line or "Worker failed to boot" in line
            for line in notes(project, "gunicorn")
        ),
        timeout=30,
    )
    said = " ".join(notes(project, "gunicorn"))
    assert "RuntimeError: broken on purpose" in said, said
    app.write_text(good)
    assert wait_for(lambda: serving(project), timeout=30)
    assert wait_status(project, "ready")


def test_neighbour_takes_the_app_port_during_a_restart(stack: Project) -> None:
    """A hostile neighbour binds gunicorn's port while it is down: devstack names it, keeps
    retrying with backoff, and the stack recovers once the port is free again."""
    gunicorn = recorded(stack, "gunicorn")
    assert gunicorn is not None
    os.kill(gunicorn, signal.SIGKILL)
    neighbour = socket.socket()
    neighbour.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        assert wait_for(lambda: _try_bind(neighbour, stack.app_port), timeout=10, interval=0.005)
        neighbour.listen()
        assert wait_for(
            lambda: any(
                "held by python" in line and f"pid {os.getpid()}" in line for line in notes(stack, "gunicorn")
            ),
            timeout=60,
        ), notes(stack, "gunicorn")[-5:]
        assert stack.state()["supervisor"]
    finally:
        neighbour.close()
    assert wait_for(lambda: serving(stack), timeout=60)


def _try_bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
