"""Two projects' stacks side by side, and a second `up` in the same project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import kill_and_recover, log_text, recorded, serving, tree
from tests.support.stack import Project, cli_env, kill_leftovers, make_project, processes_under, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


@pytest.fixture
def second(tmp_path: Path) -> Iterator[Project]:
    other = make_project(tmp_path / "second")
    yield other
    other.down()
    left = processes_under(other.root)
    kill_leftovers(other.root)
    assert not left, left


def test_two_stacks_do_not_interfere(stack: Project, second: Project) -> None:
    second.up_detached()
    assert serving(stack) and serving(second)
    # Separate state, control sockets and logs.
    assert stack.state_dir != second.state_dir
    for proj in (stack, second):
        # gunicorn opens its control socket once its worker runs, which may follow "ready"
        ctl = proj.state_dir / "gunicorn.ctl"
        assert wait_for(ctl.exists, timeout=10), f"no {ctl}"
        access = log_text(proj, "nginx.access")
        assert f"upstream=127.0.0.1:{proj.app_port}" in access
        other = second if proj is stack else stack
        assert f"127.0.0.1:{other.app_port}" not in access
        assert str(other.root) not in log_text(proj, "gunicorn")
    # A fault in one leaves the other alone.
    before = {p.pid for p in tree(second)}
    kill_and_recover(stack, "gunicorn master")
    kill_and_recover(stack, "nginx master")
    assert {p.pid for p in tree(second)} == before
    # Stopping one leaves the other serving.
    assert stack.down().returncode == 0
    assert serving(second)
    assert {p.pid for p in tree(second)} == before
    # kill -9 of one supervisor: the other is untouched too.
    stack.up_detached()
    os.kill(stack.state()["supervisor"]["pid"], signal.SIGKILL)
    stack.up_detached()
    assert serving(second) and serving(stack)
    assert {p.pid for p in tree(second)} == before


def test_second_up_in_same_project_says_already_running(stack: Project) -> None:
    gunicorn = recorded(stack, "gunicorn")
    for args in (("up", "--detach"), ("up",)):
        result = stack.cli(*args)
        assert result.returncode == 6, result
        assert "already running" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert recorded(stack, "gunicorn") == gunicorn
    assert serving(stack)


def test_ups_started_at_once_start_one_stack(project: Project) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--detach"],
            cwd=project.root,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(proc.wait(timeout=120), proc.communicate()[1]) for proc in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 6, 6], results
    winner = next(err for code, err in results if code == 0)
    assert f"supervisor pid {project.state()['supervisor']['pid']}" in winner
    assert all("already running" in err for code, err in results if code == 6)
    assert serving(project)
