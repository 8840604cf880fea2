"""`devstack doctor` on the stack of a devstack.toml: running, stopped, misconfigured."""

from __future__ import annotations

import socket

import pytest

from devstack.project.apppython import own_gunicorn
from tests.support.doctor import doctor, finding, statuses
from tests.support.require import needs
from tests.support.stack import Project

pytestmark = pytest.mark.needs_nginx


def test_running_example_stack_is_healthy(stack: Project) -> None:
    code, report = doctor(cwd=stack.root)
    bad = {k: v for k, v in statuses(report).items() if v not in ("ok", "na")}
    assert not bad, [finding(report, k) for k in bad]
    assert code == 0
    assert report["target"]["kind"] == "devstack" and report["target"]["running"]
    assert finding(report, "static.ladder")["status"] == "ok"
    assert finding(report, "socketio.upgrade")["status"] == "ok"
    # The human output: one mark per area, then the summary.
    human = stack.cli("doctor")
    assert human.returncode == 0, human.stdout + human.stderr
    assert "[✓] Static files" in human.stdout and "no issues found" in human.stdout


@needs((own_gunicorn() or (0,)) >= (26,), "needs gunicorn >= 26 (the test extras install the newest)")
def test_eventlet_worker_in_config_on_gunicorn_26(project: Project) -> None:
    project.write_config(app='worker = "eventlet"')
    code, report = doctor("gunicorn.eventlet", cwd=project.root)
    check = finding(report, "gunicorn.eventlet")
    assert check["status"] == "error", check
    assert "app.worker" in check["evidence"][0]["where"]
    assert code == 1
    project.write_config(app='worker = "gthread"')
    code, report = doctor("gunicorn.eventlet", cwd=project.root)
    assert statuses(report) == {"gunicorn.eventlet": "ok"} and code == 0


def test_port_taken_by_another_process(project: Project) -> None:
    with socket.create_server(("127.0.0.1", project.public_port)):
        code, report = doctor("net", cwd=project.root)
        check = finding(report, "net.ports-taken")
        assert check["status"] == "error", check
        assert str(project.public_port) in check["finding"]
        assert code == 1
    code, report = doctor("net", cwd=project.root)
    assert finding(report, "net.ports-taken")["status"] == "ok"
    assert code == 0


@pytest.mark.parametrize("waiting", [True, False], ids=["waiting-for-a-fix", "gave-up"])
def test_failed_start_is_explained_after_the_fact(project: Project, waiting: bool) -> None:
    app = project.root / "app.py"
    app.write_text(app.read_text() + "\nimport no_such_module_here\n")
    # Without --timeout the stack waits for a fix (nginx up, gunicorn down); with it, it gave up.
    up = project.cli("up", "--detach") if waiting else project.cli("up", "--detach", "--timeout", "3")
    assert up.returncode == (0 if waiting else 4), up.stderr
    code, report = doctor("gunicorn.running", cwd=project.root)
    check = finding(report, "gunicorn.running")
    assert check["status"] == "error", check
    assert "ModuleNotFoundError" in check["finding"], check
    assert code == 1


def test_no_config_points_at_url_mode(tmp_path: object) -> None:
    import subprocess
    import sys

    from tests.support.stack import cli_env

    result = subprocess.run(
        [sys.executable, "-m", "devstack", "doctor"],
        cwd=str(tmp_path),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "devstack doctor --url URL" in result.stderr and "Traceback" not in result.stderr
