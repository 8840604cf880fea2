"""gunicorn's head start (procs/headstart.py, backends/handoff.py): a second `up --detach` in a
project spawns gunicorn from the first one's launch record before reading the config, and
adopts it when the plan asks for exactly that process; a changed plan stops it and starts the
right one; a failing `up` leaves nothing behind; a running stack or a taken port gets none."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from devstack import procstat
from devstack.procs import headstart
from tests.stackutil import Project, cli_env, free_ports, processes_under

pytestmark = pytest.mark.needs_nginx
ADOPTED = "started ahead of the config"


def up(project: Project, cache: Path) -> tuple[int, str]:
    done = project.cli("up", "--detach", env=cli_env(XDG_CACHE_HOME=str(cache)))
    return done.returncode, done.stdout + done.stderr


def gunicorn_log(project: Project) -> str:
    return (project.state_dir / "logs" / "gunicorn.log").read_text(errors="replace")


def test_second_up_adopts_the_head_start(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code, out = up(project, cache)
    assert code == 0, out
    assert ADOPTED not in gunicorn_log(project)
    (record,) = (cache / "devstack").glob("launch-*.json")
    assert json.loads(record.read_text())["cwd"] == str(project.root)
    project.down()
    code, out = up(project, cache)
    assert code == 0 and "ready in" in out, out
    assert ADOPTED in gunicorn_log(project)
    pid = project.state()["processes"]["gunicorn"]["pid"]
    assert f"pid {pid})" in gunicorn_log(project)  # the adopted one is the supervised one


def test_a_changed_plan_stops_the_head_start(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert up(project, cache)[0] == 0
    project.down()
    old_app_port = project.app_port
    project.app_port = free_ports(1)[0]
    project.write_config()
    code, out = up(project, cache)
    assert code == 0, out
    assert project.state()["ports"]["app"] == project.app_port
    assert ADOPTED not in gunicorn_log(project)  # stopped, never adopted
    names = [" ".join(p.cmdline()) for p in processes_under(project.root)]
    assert not any(f"127.0.0.1:{old_app_port}" in n for n in names), names


def test_a_failing_up_leaves_no_head_start_behind(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert up(project, cache)[0] == 0
    project.down()
    project.config_path.write_text(project.config_path.read_text() + "\n[server\n")
    code, out = up(project, cache)
    assert code == 1 and "devstack.toml" in out, out
    assert processes_under(project.root) == []  # the head start was stopped before exiting


@pytest.mark.unit
def test_no_head_start_while_running_or_onto_a_taken_port(tmp_path: Path) -> None:
    """Refused before anything is spawned (this test starts no process)."""
    state_dir = tmp_path / ".devstack"
    state_dir.mkdir()
    key = headstart.key(None, str(tmp_path))
    port = free_ports(1)[0]
    argv = ["/bin/sh", "-c", "exit 0", "--bind", f"127.0.0.1:{port}"]
    headstart.remember(key, argv, tmp_path, {}, state_dir, [("127.0.0.1", port)], [tmp_path], str(tmp_path))
    with socket.socket() as held:  # the port is taken
        held.bind(("127.0.0.1", port))
        held.listen()
        assert headstart.launch(key, str(tmp_path)) is None
    me = {"pid": os.getpid(), "create_time": procstat.started_at(os.getpid())}
    (state_dir / "state.json").write_text(json.dumps({"status": "ready", "supervisor": me}))
    assert headstart.launch(key, str(tmp_path)) is None  # "already running"
    assert headstart.launch(headstart.key("other.toml", str(tmp_path)), str(tmp_path)) is None  # no record
    assert headstart._bound_ports(argv) == [str(port)]
    assert not headstart.holds(port)
