"""plan.build over hand-made HostFacts, starting nothing: what the config and the facts decide.
facts.gather, the I/O half, is tested once over a real project tree (no subprocess: devstack's
own interpreter is probed in-process)."""

from __future__ import annotations

import builtins
import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from devstack.errors import ConfigError, DevstackError
from devstack.project import asyncmode
from devstack.project import config as config_mod
from devstack.project.config import Config
from devstack.stack import facts, plan
from tests.support.facts import make_facts, python_with
from tests.support.stack import Project, make_project

pytestmark = pytest.mark.unit


def load(project: Project) -> Config:
    return config_mod.load(project.config_path)


def build(project: Project, **changes: Any) -> plan.Plan:
    config = load(project)
    return plan.build(config, make_facts(config, **changes), colors=False)


def gunicorn(the_plan: plan.Plan) -> plan.ProcessSpec:
    return next(s for s in the_plan.processes if s.name == "gunicorn")


def test_no_static_folder_proxies_everything_and_says_so(tmp_path: Path) -> None:
    the_plan = build(make_project(tmp_path), has_static=False)
    assert "alias" not in the_plan.nginx_conf and "no static folder" in the_plan.nginx_conf
    assert [w for w in the_plan.warnings if w.startswith("no static folder")]


def test_a_static_dir_written_in_the_file_must_exist(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(static='dir = "assets"')
    with pytest.raises(ConfigError, match=r"static\.dir"):
        load(project)


def test_dotenv_reaches_gunicorn_under_devstacks_own(tmp_path: Path) -> None:
    dotenv = {"FROM_FLASKENV": "1", "BOTH": "env", "DEVSTACK": "from-dotenv", "SECRET": "s p a c e"}
    env = gunicorn(build(make_project(tmp_path), dotenv=dotenv)).env
    assert env["FROM_FLASKENV"] == "1" and env["BOTH"] == "env" and env["SECRET"] == "s p a c e"
    assert env["DEVSTACK"] == "1"  # devstack's own variables are set over .env


def test_control_socket_is_short_for_a_deep_project(tmp_path: Path) -> None:
    project = make_project(tmp_path.joinpath(*["deep-folder-name-here"] * 5))
    argv = gunicorn(build(project)).argv
    control = argv[argv.index("--control-socket") + 1]
    assert len(control.encode()) <= 100 and control.endswith("gunicorn.ctl")


def test_no_control_socket_flag_before_gunicorn_25_1(tmp_path: Path) -> None:
    old = python_with("flask", "flask_socketio", "simple_websocket", gunicorn=(25, 0, 3))
    assert "--control-socket" not in gunicorn(build(make_project(tmp_path), app_python=old)).argv


def test_a_dollar_in_the_path_reaches_nginx_through_a_link(tmp_path: Path) -> None:
    conf = build(make_project(tmp_path / "a $HOME b")).nginx_conf
    alias = next(line for line in conf.splitlines() if line.strip().startswith("alias "))
    assert "$" not in alias and "static-link" in alias


def test_gunicorn_and_nginx_run_the_binaries_the_facts_name(tmp_path: Path) -> None:
    the_plan = build(make_project(tmp_path), nginx="/opt/nginx/sbin/nginx")
    assert the_plan.app_python is not None
    assert gunicorn(the_plan).argv[0] == the_plan.app_python.path == "/project/.venv/bin/python"
    nginx = next(s for s in the_plan.processes if s.name == "nginx")
    assert nginx.argv[0] == "/opt/nginx/sbin/nginx" and nginx.cwd == the_plan.facts.state_dir


def test_app_python_pointing_nowhere_is_a_config_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(app='python = "env/bin/python"')
    with pytest.raises(ConfigError, match=r"app\.python"):
        facts.gather(load(project))


def test_factory_wsgi_is_accepted_as_gunicorn_writes_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    text = project.config_path.read_text().replace('wsgi = "app:app"', "wsgi = \"app:make_app('dev')\"")
    project.config_path.write_text(text)
    assert gunicorn(build(project)).argv[-1] == "app:make_app('dev')"


def test_a_derived_state_root_moves_every_state_path(tmp_path: Path) -> None:
    # The VM guest derives its config by fields (dataclasses.replace), not by subclassing Config.
    config = load(make_project(tmp_path))
    guest = dataclasses.replace(config, state_root=tmp_path / "guest-state")
    assert guest.state_dir == tmp_path / "guest-state" and config.state_dir == config.root / ".devstack"
    the_plan = plan.build(guest, make_facts(guest), colors=False)
    assert f"{(tmp_path / 'guest-state').resolve()}/nginx.pid" in the_plan.nginx_conf


@pytest.mark.parametrize(
    ("setting", "fstype", "sendfile", "warned"),
    [
        ("auto", "ext4", True, False),
        ("auto", "vboxsf", False, False),
        ("auto", "fuse.sshfs", False, False),
        ("on", "nfs4", True, True),
        ("off", "ext4", False, False),
    ],
)
def test_sendfile_follows_the_static_folders_filesystem(
    tmp_path: Path, setting: str, fstype: str, sendfile: bool, warned: bool
) -> None:
    project = make_project(tmp_path)
    project.write_config(server=f'sendfile = "{setting}"')
    the_plan = build(project, static_fstype=fstype)
    assert the_plan.sendfile is sendfile and the_plan.static_fstype == fstype
    assert f"sendfile {'on' if sendfile else 'off'};" in the_plan.nginx_conf
    assert any(w.startswith("sendfile is on but") and fstype in w for w in the_plan.warnings) is warned


def test_inotify_on_a_shared_folder_is_replaced_by_poll(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(app='reload_engine = "inotify"')
    has = python_with("flask", "flask_socketio", "simple_websocket", "inotify")
    assert build(project, app_python=has).reload_engine == "inotify"
    shared = build(project, app_python=has, static_fstype="virtiofs")
    assert shared.reload_engine == "poll" and any(
        "inotify misses virtiofs edits" in w for w in shared.warnings
    )
    missing = build(project)  # the inotify package is not in the app's python
    assert missing.reload_engine == "poll" and any("not installed" in w for w in missing.warnings)
    assert "--reload-engine" in gunicorn(missing).argv


def test_gevent_worker_needs_gevent_and_never_gets_inotify(tmp_path: Path) -> None:
    project = make_project(tmp_path, worker="gevent")
    with pytest.raises(ConfigError, match="gevent is not installed"):
        build(project)
    project.write_config(app='worker = "gevent"\nreload_engine = "inotify"')
    has = python_with("flask", "flask_socketio", "gevent", "inotify")
    the_plan = build(project, app_python=has)
    assert the_plan.reload_engine == "poll" and any("crashes gevent workers" in w for w in the_plan.warnings)
    assert gunicorn(the_plan).env["DEVSTACK_ASYNC_MODE"] == "gevent"


def test_eventlet_worker_is_refused_by_gunicorn_26(tmp_path: Path) -> None:
    project = make_project(tmp_path, worker="eventlet")
    with pytest.raises(ConfigError, match="no eventlet worker"):
        build(project, app_python=python_with("flask_socketio", "eventlet", gunicorn=(26, 0)))
    the_plan = build(project, app_python=python_with("flask_socketio", "eventlet", gunicorn=(23, 0)))
    assert any("eventlet worker is deprecated" in w for w in the_plan.warnings)


def test_gevent_worker_on_gunicorn_26_needs_its_gevent_extra(tmp_path: Path) -> None:
    project = make_project(tmp_path, worker="gevent")
    bare = python_with(
        "flask", "flask_socketio", "gevent", gunicorn=(27, 0, 1)
    )  # pip install gunicorn gevent
    with pytest.raises(ConfigError, match=r"needs packaging.*-m pip install 'gunicorn\[gevent\]'"):
        build(project, app_python=bare)
    extra = python_with("flask", "flask_socketio", "gevent", "packaging", gunicorn=(27, 0, 1))
    assert build(project, app_python=extra).processes
    # Until 25 packaging is gunicorn's own dependency: there, nothing to check.
    assert build(
        project, app_python=python_with("flask", "flask_socketio", "gevent", gunicorn=(25, 1))
    ).processes


def test_the_classic_socketio_app_runs_unedited_with_one_note(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    eventlet = python_with("flask", "flask_socketio", "simple_websocket", "eventlet")
    explicit = build(project, app_python=eventlet)  # async_mode="threading" in the source
    assert explicit.notes == [] and not any("async_mode" in w for w in explicit.warnings)
    classic = asyncmode.read("from flask_socketio import SocketIO\nsocketio = SocketIO(app)\n", "app.py")
    the_plan = build(project, app_python=eventlet, async_use=classic)
    assert the_plan.notes == [
        "app.py:2: SocketIO(app) names no async_mode, so Flask-SocketIO would pick eventlet "
        "(installed), which the gthread worker cannot run: devstack has it use threading — "
        'make it explicit with SocketIO(app, async_mode="threading")'
    ]
    gevent = python_with("flask", "flask_socketio", "gevent", "eventlet")
    assert (
        "devstack has it use gevent"
        in build(make_project(tmp_path / "g", worker="gevent"), app_python=gevent, async_use=classic).notes[0]
    )
    # Nothing to correct: threading is what Flask-SocketIO picks without eventlet or gevent.
    assert build(project, app_python=python_with("flask", "flask_socketio"), async_use=classic).notes == []
    # An app without Socket.IO gets no note about it, whatever its source reads as.
    assert build(project, app_python=eventlet, async_use=classic, uses_socketio=False).notes == []


@pytest.mark.parametrize(
    ("source", "where"),
    [
        (
            "socketio = SocketIO(app,\n    async_mode='eventlet')\n",
            "app.py:1: SocketIO(app, async_mode='eventlet')",
        ),
        (
            "import eventlet\neventlet.monkey_patch()\nsocketio = SocketIO(app)\n",
            "app.py:2: eventlet.monkey_patch()",
        ),
    ],
)
def test_an_app_asking_for_eventlet_is_one_error_naming_the_line(
    tmp_path: Path, source: str, where: str
) -> None:
    project = make_project(tmp_path)
    eventlet = python_with("flask", "flask_socketio", "eventlet", gunicorn=(27, 0, 1))
    with pytest.raises(DevstackError) as raised:
        build(project, app_python=eventlet, async_use=asyncmode.read(source, "app.py"))
    message = str(raised.value)
    assert message.startswith(f"{where} needs gunicorn's eventlet worker and gunicorn 27.0.1 has no")
    assert "async_mode='threading'" in message and "'gunicorn<26'" in message and "\n" not in message
    old = python_with("flask", "flask_socketio", "eventlet", gunicorn=(25, 0))
    with pytest.raises(DevstackError, match=r'devstack runs the gthread worker .* worker = "eventlet"'):
        build(project, app_python=old, async_use=asyncmode.read(source, "app.py"))
    # Under gunicorn's own eventlet worker (gunicorn < 26) the app gets what it asks for.
    eventlet_worker = make_project(tmp_path / "e", worker="eventlet")
    assert build(eventlet_worker, app_python=old, async_use=asyncmode.read(source, "app.py")).notes == []


def test_socketio_needs_flask_socketio_and_gthread_wants_simple_websocket(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    with pytest.raises(DevstackError, match="imports flask_socketio, which is not installed"):
        build(project, app_python=python_with("flask"))
    polling = build(project, app_python=python_with("flask", "flask_socketio")).warnings
    assert any("falls back to long-polling" in w for w in polling)
    assert not build(project, app_python=python_with("flask"), uses_socketio=False).warnings


def test_an_engineio_whose_websockets_fail_under_gthread_is_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    old = dataclasses.replace(
        python_with("flask", "flask_socketio", "simple_websocket"), versions={"python-engineio": "4.5.1"}
    )
    with pytest.raises(DevstackError) as raised:
        build(project, app_python=old)
    assert str(raised.value) == (
        "python-engineio 4.5.1 in the app's python /project/.venv/bin/python ends every WebSocket under "
        "the gthread worker in \"AttributeError: 'Response' object has no attribute 'status_code'\" "
        "(fixed in 4.6.0) — /project/.venv/bin/python -m pip install 'python-engineio>=4.6'"
    )
    fixed = dataclasses.replace(old, versions={"python-engineio": "4.6.0"})
    assert build(project, app_python=fixed).processes
    # The edges as parse_version gives them: (4,) is refused, (4, 6) is the fix.
    with pytest.raises(DevstackError, match=r"^python-engineio 4 in the app's python"):
        build(project, app_python=dataclasses.replace(old, versions={"python-engineio": "4"}))
    assert build(project, app_python=dataclasses.replace(old, versions={"python-engineio": "4.6"})).processes
    assert build(make_project(tmp_path / "nosio"), app_python=old, uses_socketio=False).processes
    three = dataclasses.replace(old, versions={"python-engineio": "3.14.2"})  # long-polls: no websocket
    assert build(project, app_python=three).processes


def test_missing_gunicorn_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(DevstackError, match=r"gunicorn is not installed .* -m pip install 'gunicorn>=23'"):
        build(make_project(tmp_path), app_python=python_with("flask", gunicorn=None))


def test_mime_types_and_worker_user_come_from_the_facts(tmp_path: Path) -> None:
    the_plan = build(make_project(tmp_path), mime_types=None, worker_user="alice staff")
    assert f"include {the_plan.facts.state_dir}/mime.types;" in the_plan.nginx_conf
    assert "user alice staff;" in the_plan.nginx_conf
    assert "user " not in build(make_project(tmp_path / "b")).nginx_conf.split("pid ")[0]


def test_no_color_in_the_facts_wins_over_colors(tmp_path: Path) -> None:
    config = load(make_project(tmp_path))
    colored = plan.build(config, make_facts(config), colors=True)
    assert gunicorn(colored).env["FORCE_COLOR"] == "1"
    plain = plan.build(config, make_facts(config, no_color=True), colors=True)
    assert gunicorn(plain).env["NO_COLOR"] == "1" and "FORCE_COLOR" not in gunicorn(plain).env
    assert plain.colors is True  # a re-plan asks the same as the first plan did


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"I/O during plan.build: {args[:1]}")


def test_build_does_no_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "a $HOME b")
    project.write_config(extra='[processes]\ncss = "echo css"\n')
    config = load(project)
    host = make_facts(config, procfile={"jobs": "python jobs.py", "web": "gunicorn app:app"})
    expected = plan.build(config, host, colors=True)  # loads the packaged template once
    with monkeypatch.context() as patch:
        for owner, name in [
            (builtins, "open"),
            (io, "open"),
            (os, "stat"),
            (os, "lstat"),
            (os, "scandir"),
            (os, "listdir"),
            (os, "access"),
            (subprocess, "Popen"),
            (psutil, "disk_partitions"),
        ]:
            patch.setattr(owner, name, _refuse)  # reads, stats, listings, mounts, subprocesses
        again = plan.build(config, host, colors=True)
    assert again == expected
    assert [s.name for s in again.processes] == ["gunicorn", "nginx", "jobs", "css"]


def test_gather_reads_the_project_and_the_host_once(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project.root / ".flaskenv").write_text("FLASK_APP=app\nBOTH=flaskenv\n")
    (project.root / ".env").write_text("BOTH=env\nSECRET='s p a c e'\n")
    (project.root / "Procfile").write_text("jobs: python jobs.py\n")
    config = load(project)
    environ = {"DEVSTACK_NGINX": sys.executable, "NO_COLOR": "1", "FLASK_APP": "from-shell"}
    host = facts.gather(config, python=sys.executable, environ=environ)
    assert host.app_python.path == sys.executable and host.app_python.why == "given"
    assert host.nginx == sys.executable and host.no_color
    assert host.has_static and host.static_dir == config.static_dir and host.state_dir.is_absolute()
    assert host.uses_socketio and host.async_use.dynamic  # the example app passes async_mode=os.environ...
    assert dict(host.dotenv) == {"BOTH": "env", "SECRET": "s p a c e"}  # the shell's FLASK_APP wins
    assert dict(host.procfile) == {"jobs": "python jobs.py"}
    assert host.static_fstype != "" and (os.geteuid() == 0) == (host.worker_user != "")
    with pytest.raises(DevstackError, match="nginx is not installed"):
        facts.gather(config, python=sys.executable, environ={"DEVSTACK_NGINX": "/nonexistent/nginx"})


def test_mount_table_read_directly_with_its_escapes(tmp_path: Path) -> None:
    """fsinfo reads /proc/self/mounts itself (no psutil on the path to gunicorn's start): a
    mount point with a space is written \\040 there; the longest mount holding a path wins."""
    from devstack.system import fsinfo

    table = tmp_path / "mounts"
    table.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "vagrant /home/me/My\\040Projects vboxsf rw 0 0\n"
        "tmpfs /home/me/My\\040Projects/site/tmp tmpfs rw 0 0\n"
    )
    assert fsinfo.mounts(str(table)) == [
        ("/", "ext4"),
        ("/home/me/My Projects", "vboxsf"),
        ("/home/me/My Projects/site/tmp", "tmpfs"),
    ]
    assert "/" in dict(fsinfo.mounts())  # this machine's own table parses


def test_each_blueprint_static_folder_gets_its_own_location(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project.root / "chat" / "static").mkdir(parents=True)
    project.write_config(extra='[[static.extra]]\nurl = "/chat/static/"\ndir = "chat/static"\n')
    conf = build(project).nginx_conf
    block = conf.split("location /chat/static/ {", 1)[1].split("}", 1)[0]
    assert f"alias {(project.root / 'chat' / 'static').resolve()}/;" in block
    # The same safe headers as the main static location.
    for line in ('add_header Cache-Control "no-store" always;', "etag off;", "disable_symlinks on from="):
        assert line in block, line
    assert "location /static/ {" in conf and "location / {" in conf


def test_static_at_the_site_root_serves_files_that_exist_and_proxies_the_rest(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(static='dir = "."\nurl = "/"')
    conf = build(project).nginx_conf
    root_block = conf.split("location / {", 1)[1].split("location @app {", 1)[0]
    assert f"root {project.root.resolve()};" in root_block
    assert "try_files $uri @app;" in root_block
    assert 'add_header Cache-Control "no-store" always;' in root_block
    assert "location @app {" in conf and "proxy_pass http://devstack_app;" in conf.split("location @app {")[1]
    assert "alias" not in conf


def test_extra_processes_run_as_if_the_venv_were_activated(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(extra='[processes]\nworker = "rq worker"\n')
    the_plan = build(project, virtual_env="/project/.venv", path="/usr/bin:/project/.venv/bin:/bin")
    worker = next(s for s in the_plan.processes if s.name == "worker")
    assert worker.env["PATH"] == "/project/.venv/bin:/usr/bin:/bin"  # first, and only once
    assert worker.env["VIRTUAL_ENV"] == "/project/.venv"
    # Not a venv's interpreter: PATH still leads with its folder, no VIRTUAL_ENV is made up.
    plain = build(
        project, app_python=dataclasses.replace(make_facts(load(project)).app_python, path="/usr/bin/python3")
    )
    worker = next(s for s in plain.processes if s.name == "worker")
    assert worker.env["PATH"].split(":")[0] == "/usr/bin" and "VIRTUAL_ENV" not in worker.env
