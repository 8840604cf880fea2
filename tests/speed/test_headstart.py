"""gunicorn's head start (speed/headstart.py, speed/handoff.py): every `up` spawns gunicorn gated
before reading the config, hands it the plan through its pipe and adopts it; a plan the gate
cannot give stops it and starts the right one; a failing `up` leaves nothing behind; a running
stack or a taken port gets none; nothing of the plan is kept at rest between runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from devstack import speed
from devstack.speed import headstart
from devstack.system import procstat, startlock
from tests.support.doctor import doctor, finding, statuses
from tests.support.stack import Project, cli_env, free_ports, processes_under, wait_for

pytestmark = pytest.mark.needs_nginx
# Another `up` starting the same stack: it holds the start lock until killed.
LOCK_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def http_text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def up(project: Project, cache: Path) -> tuple[int, str]:
    env = cli_env(XDG_CACHE_HOME=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the gate tests set it in [app.env] only
    done = project.cli("up", "--detach", env=env)
    return done.returncode, done.stdout + done.stderr


def gunicorn_log(project: Project) -> str:
    return (project.state_dir / "logs" / "gunicorn.log").read_text(errors="replace")


def test_a_second_up_is_gated_too_and_nothing_is_kept_at_rest(project: Project, tmp_path: Path) -> None:
    """No launch record any more (it saved nothing the gate does not): every `up` starts gunicorn
    gated and adopts it, and the cache folder holds no command line, no environment, no secret."""
    cache = tmp_path / "cache"
    (project.root / ".env").write_text("SECRET_TOKEN=s3cr3t-at-rest\n")
    for _ in range(2):
        code, out = up(project, cache)
        assert code == 0 and "ready in" in out, out
        record = json.loads((project.state_dir / speed.GATE_RECORD).read_text())
        assert record["pid"] == project.state()["processes"]["gunicorn"]["pid"]  # the gated one, adopted
        assert "started ahead of the config" not in gunicorn_log(project)
        project.down()
    kept = (
        [p for p in (cache / "devstack").rglob("*") if p.is_file()] if (cache / "devstack").exists() else []
    )
    assert not [p for p in kept if p.name.startswith("launch-")], kept
    assert not [p for p in kept if b"s3cr3t-at-rest" in p.read_bytes()], kept
    assert b"s3cr3t-at-rest" not in (project.state_dir / speed.GATE_RECORD).read_bytes()


def test_an_edited_config_gets_no_head_start(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert up(project, cache)[0] == 0
    project.down()
    old_app_port = project.app_port
    project.app_port = free_ports(1)[0]
    project.write_config()
    code, out = up(project, cache)
    assert code == 0, out
    assert project.state()["ports"]["app"] == project.app_port
    assert "started ahead of the config" not in gunicorn_log(project)  # none was made
    names = [" ".join(p.cmdline()) for p in processes_under(project.root)]
    assert not any(f"127.0.0.1:{old_app_port}" in n for n in names), names


def test_a_failing_up_leaves_no_head_start_behind(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert up(project, cache)[0] == 0
    project.down()
    # The gated head start is made; `up` then refuses the planted link.
    (project.state_dir / "logs" / "planted.log").symlink_to(tmp_path / "elsewhere")
    code, out = up(project, cache)
    assert code != 0 and "planted.log" in out, out
    assert processes_under(project.root) == []  # the head start was stopped before exiting


@pytest.mark.unit
def test_no_head_start_while_running_or_onto_a_taken_port(tmp_path: Path) -> None:
    """Refused before anything is spawned (this test starts no process)."""
    state_dir = tmp_path / ".devstack"
    state_dir.mkdir()
    port = free_ports(1)[0]
    argv = ["/bin/sh", "-c", "exit 0", "--bind", f"127.0.0.1:{port}"]
    record = {"state_dir": str(state_dir), "ports": [["127.0.0.1", port]], "folders": [str(tmp_path)]}
    with socket.socket() as held:  # the port is taken
        held.bind(("127.0.0.1", port))
        held.listen()
        assert not headstart._free_to_start(record)
    me = {"pid": os.getpid(), "create_time": procstat.started_at(os.getpid())}
    (state_dir / "state.json").write_text(json.dumps({"status": "ready", "supervisor": me}))
    assert not headstart._free_to_start(record)  # "already running"
    (state_dir / "state.json").unlink()
    assert not headstart._free_to_start({**record, "folders": [str(tmp_path / "gone")]})
    assert not startlock._held  # every refusal let the start lock go again
    assert headstart._free_to_start(record)  # and with nothing in the way, it is free
    startlock.release_held()
    assert headstart._bound_ports(argv) == [str(port)]
    assert not headstart.holds(port)


def test_a_first_up_spawns_gunicorn_from_the_plan_and_adopts_it(project: Project, tmp_path: Path) -> None:
    """gunicorn starts as soon as the plan exists, before the supervisor's own imports and set-up,
    and the supervisor adopts that very process."""
    env = cli_env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = project.cli("up", "--detach", env=env)
    assert done.returncode == 0, done.stderr
    log = gunicorn_log(project)
    assert "plan differs" not in log and "started ahead of the config" not in log, log


def test_launch_planned_spawns_the_plans_gunicorn_or_nothing(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.backends.statedir import prepare_state_dir
    from devstack.project import config
    from devstack.stack import facts, plan
    from devstack.system import kill

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = config.load(project.root / "devstack.toml")
    the_plan = plan.build(cfg, facts.gather(cfg))
    spec = next(p for p in the_plan.processes if p.name == "gunicorn")

    def prepare() -> None:
        prepare_state_dir(cfg, the_plan.facts)

    with socket.socket() as held:  # the app port is taken: nothing is spawned
        held.bind(("127.0.0.1", project.app_port))
        assert headstart.launch_planned(cfg, the_plan, prepare) is None
    assert not (project.state_dir / "tmp").exists()  # nor prepared
    # Another `up` holds the start lock (it is starting this stack): no second gunicorn.
    other = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(project.state_dir / "up.lock")],
        stdout=subprocess.PIPE,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == b"held\n"
        assert headstart.launch_planned(cfg, the_plan, prepare) is None
        assert not startlock._held
    finally:
        other.kill()
        other.wait()
        assert other.stdout is not None
        other.stdout.close()
    launched = headstart.launch_planned(cfg, the_plan, prepare)
    assert launched is not None and launched.source == "plan"
    try:
        assert launched.argv == spec.argv and (project.state_dir / "tmp").is_dir()
        assert headstart.holds(project.app_port)
        assert headstart.launch_planned(cfg, the_plan, prepare) is None  # one at a time
        lock = startlock.acquire(project.state_dir)  # `up` gets the lock the head start took
        try:
            assert not startlock._held
            child_env = {**os.environ, **spec.env, "DEVSTACK_SUPERVISOR_PID": str(os.getpid())}
            assert headstart.take(spec.argv, str(spec.cwd), child_env) is launched.proc  # as Child.start asks
        finally:
            os.close(lock)
    finally:
        proc = launched.proc
        kill.stop_group(proc.pid, grace=3.0, exited=lambda: proc.poll() is not None)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
    assert headstart.pending() is None


# What the app's worker sees: a variable of [app.env] and the interpreter's bytecode setting.
PROBE_ROUTE = """

@app.route("/gate-probe")
def gate_probe():
    import sys

    return f"{os.environ.get('GATE_PROBE')} {sys.dont_write_bytecode} {os.environ.get('DEVSTACK_GATE')}"
"""


def gated_project(project: Project, app_env: str) -> None:
    with (project.root / "app.py").open("a", encoding="utf-8") as app:
        app.write(PROBE_ROUTE)
    project.write_config(extra=f"[app.env]\n{app_env}\n")


def gunicorn_cmdline(project: Project) -> list[str]:
    return psutil.Process(project.state()["processes"]["gunicorn"]["pid"]).cmdline()


def test_a_first_up_hands_the_plan_to_a_gated_gunicorn(project: Project, tmp_path: Path) -> None:
    """gunicorn was spawned at the fork with no settings but gunicorn_conf.py,
    and got the plan's through its pipe: the app sees [app.env], a HUP keeps every setting."""
    gated_project(project, 'GATE_PROBE = "through"\nPYTHONDONTWRITEBYTECODE = "1"')
    code, out = up(project, tmp_path / "cache")
    assert code == 0, out
    pid = project.state()["processes"]["gunicorn"]["pid"]
    argv = gunicorn_cmdline(project)
    assert argv[-2:] == ["--config", headstart.CONF] and "--bind" not in argv, argv  # the gated one
    record = json.loads((project.state_dir / speed.GATE_RECORD).read_text())
    assert record["pid"] == pid and f"127.0.0.1:{project.app_port}" in record["argv"]
    probe = f"http://127.0.0.1:{project.app_port}/gate-probe"
    assert http_text(probe) == "through True None"  # its environment, sys, and no pipe left over
    worker = psutil.Process(pid).children()[0].pid
    os.kill(pid, signal.SIGHUP)  # gunicorn reads its config file again and replaces the worker
    assert wait_for(lambda: [c.pid for c in psutil.Process(pid).children()] not in ([], [worker]), 20)
    assert wait_for(lambda: http_text(probe) == "through True None", 20)
    report = doctor(cwd=project.root)[1]  # the settings it judges are the plan's, not the argv's
    bad = {k: v for k, v in statuses(report).items() if k.startswith("gunicorn.") and v not in ("ok", "na")}
    assert not bad, [finding(report, k) for k in bad]


def test_a_plan_the_gate_cannot_give_gets_gunicorn_spawned(project: Project, tmp_path: Path) -> None:
    """A variable the interpreter reads only at start (PYTHONHASHSEED): the gated gunicorn is
    stopped and the plan's own command line is spawned, with nothing left behind."""
    gated_project(project, 'GATE_PROBE = "spawned"\nPYTHONHASHSEED = "7"')
    code, out = up(project, tmp_path / "cache")
    assert code == 0, out
    assert f"127.0.0.1:{project.app_port}" in gunicorn_cmdline(project)
    assert http_text(f"http://127.0.0.1:{project.app_port}/gate-probe") == "spawned False None"
    gated = [
        p for p in processes_under(project.root) if "gunicorn" in p.cmdline() and "--bind" not in p.cmdline()
    ]
    assert gated == [], gated


def test_an_up_that_fails_stops_its_gated_gunicorn(project: Project, tmp_path: Path) -> None:
    project.write_config(app="threads = 0")  # refused by the config's check, after the fork
    code, out = up(project, tmp_path / "cache")
    assert code != 0 and "threads" in out, out
    assert wait_for(lambda: processes_under(project.root) == [], 10), processes_under(project.root)


@pytest.mark.unit
def test_a_gate_opens_only_where_nothing_read_at_start_differs() -> None:
    gated = {"PATH": "/bin", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", speed.GATE: "5"}
    assert headstart.applicable(gated, {**gated, "FLASK_DEBUG": "1", "PATH": "/usr/bin"})
    assert headstart.applicable(gated, {**gated, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": ""})
    for name, value in [
        ("PYTHONPATH", "src"),
        ("LC_ALL", "C"),
        ("LD_PRELOAD", "x.so"),
        ("WEB_CONCURRENCY", "4"),
    ]:
        assert not headstart.applicable(gated, {**gated, name: value}), name
    assert not headstart.applicable(gated, {k: v for k, v in gated.items() if k != "LANG"})  # unset too
