"""Signals to devstack itself, its terminal closing, and kill -9 of devstack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest

from tests.support.faults import alive, busy_ports, serving, start_foreground, tree, wait_status
from tests.support.require import have, needs
from tests.support.stack import Project, cli_env, processes_under, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_to_foreground_devstack_stops_cleanly(project: Project, sig: signal.Signals) -> None:
    fg = start_foreground(project)
    assert wait_status(project, "ready"), fg.output
    procs = tree(project)
    assert len(procs) >= 3, procs
    fg.proc.send_signal(sig)
    code = fg.wait()
    assert code == 0, fg.output
    assert f"stopped ({sig.name}); no process left" in fg.output, fg.output
    assert not alive(procs)
    assert not busy_ports(project)
    assert "Traceback" not in fg.output
    assert project.state()["status"] == "stopped"


def crash_logs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("devstack-crash-*.log"))


def test_terminal_closing_stops_cleanly(project: Project) -> None:
    crashes = crash_logs()
    fg = start_foreground(project, on_pty=True)
    assert wait_status(project, "ready"), fg.output
    procs = tree(project)
    fg.hang_up()
    code = fg.wait()
    assert code == 0, fg.output
    assert not alive(procs)
    assert not busy_ports(project)
    assert project.state()["status"] == "stopped"
    # Nothing to tell on a terminal that is gone: no crash report either.
    assert crash_logs() == crashes


@needs(have("tmux"), "tmux is not installed (apt-get install tmux)")
def test_tmux_window_closing_stops_cleanly(project: Project) -> None:
    server = f"devstack-fault-{uuid.uuid4().hex[:8]}"  # a private tmux server, not the user's
    env = cli_env()
    command = f"cd {project.root} && exec {sys.executable} -m devstack up"
    subprocess.run(["tmux", "-L", server, "new-session", "-d", "-s", "stack", command], env=env, check=True)
    try:
        assert wait_status(project, "ready")
        procs = tree(project)
        subprocess.run(["tmux", "-L", server, "kill-session", "-t", "stack"], check=True)
        assert wait_for(lambda: not alive(procs), timeout=30)
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], check=False, capture_output=True)
    assert not busy_ports(project)
    assert wait_status(project, "stopped", timeout=10)


def test_kill9_of_devstack_then_up_cleans_and_starts(project: Project) -> None:
    project.up_detached()
    procs = tree(project)
    sup = project.state()["supervisor"]["pid"]
    os.kill(sup, signal.SIGKILL)
    # Its children get SIGTERM from the kernel (PR_SET_PDEATHSIG) and go.
    assert wait_for(lambda: not alive(procs[1:]), timeout=30)
    status = project.cli("status")
    assert "crashed" in status.stdout, status.stdout
    project.up_detached()
    assert serving(project)


def test_kill9_of_devstack_leftovers_are_removed_by_pid_and_start_time(project: Project) -> None:
    # A process that ignores SIGTERM outlives its dead supervisor: the next up must remove it.
    (project.root / "stubborn.py").write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('stubborn up', flush=True)\ntime.sleep(600)\n"
    )
    project.write_config(extra=f"[processes]\nstubborn = '{sys.executable} stubborn.py'\n")
    project.up_detached()
    stubborn = project.state()["processes"]["stubborn"]["pid"]
    os.kill(project.state()["supervisor"]["pid"], signal.SIGKILL)
    assert psutil.pid_exists(stubborn)

    # Bystanders: one named like ours but never recorded, one whose PID is recorded in the
    # state file with the wrong start time (a recycled PID). Neither may be touched.
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "nginx"], start_new_session=True
    )
    try:
        data = project.state()
        data["processes"]["impostor"] = {
            "pid": bystander.pid,
            "create_time": psutil.Process(bystander.pid).create_time() - 1000,
        }
        (project.state_dir / "state.json").write_text(json.dumps(data))
        result = project.up_detached()
        assert not psutil.pid_exists(stubborn) or psutil.Process(stubborn).status() == "zombie"
        assert "stubborn" in result.stderr, result.stderr  # it says what it cleaned up
        assert bystander.poll() is None, "a process devstack could not prove its own was killed"
        assert serving(project)
    finally:
        bystander.kill()
        bystander.wait()
    assert not [p for p in processes_under(project.root) if p.pid == stubborn]
