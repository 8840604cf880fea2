"""plan.py's outputs to the letter: argv, environments, server names, log sources, the error
and warning lines (the mutants `make mutation` found surviving in stack/plan.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from devstack import GUNICORN_CONF
from devstack.errors import ConfigError, DevstackError
from devstack.project import asyncmode
from devstack.project import config as config_mod
from devstack.project.config import Config
from devstack.stack import plan, rootstatic
from tests.support.facts import GTHREAD_FLAGS, make_facts, python_with
from tests.support.stack import make_project

pytestmark = pytest.mark.unit


def configured(tmp_path: Path, app: str = "", server: str = "", extra: str = "") -> Config:
    project = make_project(tmp_path)
    project.write_config(app=app, server=server, extra=extra)
    return config_mod.load(project.config_path)


def built(config: Config, colors: bool = False, **changes: Any) -> plan.Plan:
    return plan.build(config, make_facts(config, **changes), colors=colors)


def built_for(
    tmp_path: Path, worker: str, modules: tuple[str, ...], version: tuple[int, ...] | None, source: str
) -> plan.Plan:
    """The plan of a project running worker, whose app python has modules and gunicorn version,
    with SOURCES[source] as its app.py."""
    return built(
        configured(tmp_path, app=f'worker = "{worker}"'),
        app_python=python_with("flask", *modules, gunicorn=version),
        async_use=asyncmode.read(SOURCES[source], "app.py"),
    )


def spec(the_plan: plan.Plan, name: str) -> plan.ProcessSpec:
    return next(s for s in the_plan.processes if s.name == name)


def test_gunicorn_argv_starts_as_the_head_start_expects(tmp_path: Path) -> None:
    config = configured(tmp_path)
    argv = spec(built(config), "gunicorn").argv
    assert argv[:5] == ["/project/.venv/bin/python", "-m", "gunicorn", "--config", GUNICORN_CONF]
    assert argv[5:9] == ["--chdir", str(config.app_dir), "--bind", f"127.0.0.1:{config.server.app_port}"]


def test_extra_processes_run_through_sh_exec_in_the_project(tmp_path: Path) -> None:
    config = configured(tmp_path, extra='[processes]\ncss = "tailwind --watch"\n')
    css = spec(built(config, dotenv={"FROM_DOTENV": "x"}), "css")
    assert css.argv == ["/bin/sh", "-c", "exec tailwind --watch"]
    assert (css.cwd, css.restart) == (config.root, "always")
    assert css.env["FROM_DOTENV"] == "x"
    assert css.env["PYTHONUNBUFFERED"] == "1" and css.env["NO_COLOR"] == "1"
    assert css.env["PATH"].startswith("/project/.venv/bin:")


def test_procfile_processes_join_unless_devstack_runs_them_or_the_toml_names_them(tmp_path: Path) -> None:
    config = configured(tmp_path, extra='[processes]\nworker = "rq worker"\n')
    warnings: list[str] = []
    procfile = {"web": "gunicorn app:app", "nginx": "nginx", "worker": "celery", "beat": "celery beat"}
    facts = make_facts(config, procfile=procfile)
    specs = plan.extra_specs(config, facts, warnings, colors=True)
    assert [(s.name, s.argv[-1]) for s in specs] == [
        ("beat", "exec celery beat"),
        ("worker", "exec rq worker"),
    ]
    assert warnings == [
        "Procfile process 'web' skipped: devstack runs the app and nginx itself",
        "Procfile process 'nginx' skipped: devstack runs the app and nginx itself",
        "process 'worker' is in the Procfile and in devstack.toml: the devstack.toml command runs",
    ]
    assert specs[0].env["FORCE_COLOR"] == "1"
    assert plan.extra_specs(config, make_facts(config), []) != []
    bare = configured(tmp_path / "bare")
    assert plan.extra_specs(bare, make_facts(bare), []) == []


def test_child_and_color_environments(tmp_path: Path) -> None:
    config = configured(tmp_path, extra='[app.env]\nMINE = "1"\n')
    env = plan.child_env(config, colors=True)
    assert {k: env[k] for k in ("PYTHONUNBUFFERED", "DEVSTACK", "DEVSTACK_ASYNC_MODE", "MINE")} == {
        "PYTHONUNBUFFERED": "1",
        "DEVSTACK": "1",
        "DEVSTACK_ASYNC_MODE": "threading",
        "MINE": "1",
    }
    assert env["DEVSTACK_PUBLIC_URL"] == config.public_url
    assert plan.color_env(True) == {"FORCE_COLOR": "1", "CLICOLOR_FORCE": "1", "PY_COLORS": "1"}
    assert plan.color_env(False) == {"NO_COLOR": "1"}
    assert "NO_COLOR" not in plan.child_env(config) and plan.child_env(config)["FORCE_COLOR"] == "1"


def test_log_sources_of_a_spec() -> None:
    nginx = plan.ProcessSpec(
        "nginx", [], Path("/"), stdout_source="nginx.access", stderr_source="nginx.error"
    )
    assert (nginx.source("stdout"), nginx.source("stderr")) == ("nginx.access", "nginx.error")
    plain = plan.ProcessSpec("css", [], Path("/"))
    assert (plain.source("stdout"), plain.source("stderr")) == ("css", "css")


@pytest.mark.parametrize(
    ("listen", "hosts", "names", "nginx_listen"),
    [
        ("127.0.0.1:5000", "", ["127.0.0.1", "localhost", "[::1]", "*.localhost"], "127.0.0.1:5000"),
        (
            "0.0.0.0:5000",
            '["devbox.lan"]',
            ["localhost", "127.0.0.1", "[::1]", "*.localhost", "devbox.lan"],
            "0.0.0.0:5000",
        ),
        ("[::1]:5000", "", ["[::1]", "localhost", "127.0.0.1", "*.localhost"], "[::1]:5000"),
        ("[::]:5000", "", ["localhost", "127.0.0.1", "[::1]", "*.localhost"], "[::]:5000"),
        (
            "devbox.lan:5000",
            "",
            ["devbox.lan", "localhost", "127.0.0.1", "[::1]", "*.localhost"],
            "devbox.lan:5000",
        ),
    ],
)
def test_server_names_and_listen(
    tmp_path: Path, listen: str, hosts: str, names: list[str], nginx_listen: str
) -> None:
    project = make_project(tmp_path)
    project.write_config()
    text = project.config_path.read_text().replace(
        f'listen = "127.0.0.1:{project.public_port}"', f'listen = "{listen}"'
    )
    if hosts:
        text = text.replace("[server]\n", f"[server]\nhosts = {hosts}\n")
    project.config_path.write_text(text)
    config = config_mod.load(project.config_path)
    assert plan.server_names(config) == names
    values = plan.nginx_values(config, make_facts(config), sendfile=True)
    assert values["listen"] == nginx_listen and values["server_names"] == names
    assert (values["error_log_level"], values["static_fstype"]) == ("warn", "ext4")
    assert values["live_notify"] == str(make_facts(config).notify_socket)
    assert values["proxy_read_timeout"] == config.server.proxy_read_timeout


def test_nginx_values_refusals_are_one_line_each(tmp_path: Path) -> None:
    config = configured(tmp_path)
    facts = make_facts(config)
    bad_url = dataclasses.replace(config, static=dataclasses.replace(config.static, url="/a b/"))
    with pytest.raises(ConfigError) as raised:
        plan.nginx_values(bad_url, facts, sendfile=True)
    assert (
        str(raised.value) == "devstack.toml: static.url: '/a b/' is not a URL path — write e.g. \"/static/\""
    )
    bad_host = dataclasses.replace(config, server=dataclasses.replace(config.server, hosts=("a;b",)))
    with pytest.raises(ConfigError) as raised:
        plan.nginx_values(bad_host, facts, sendfile=True)
    assert (
        str(raised.value)
        == "devstack.toml: server.hosts: 'a;b' is not a host name — write e.g. \"devbox.lan\""
    )
    bad_listen = dataclasses.replace(config, server=dataclasses.replace(config.server, listen_host="a;b"))
    with pytest.raises(ConfigError) as raised:
        plan.nginx_values(bad_listen, facts, sendfile=True)
    assert str(raised.value).startswith("devstack.toml: server.listen: 'a;b' is not a host name")
    cases: list[tuple[str, str, Path]] = [
        ("static.dir", "static_alias", Path("/srv/a\x7fb")),
        ("the project folder", "state_dir", Path("/srv/a\nb")),
        ("the live-reload socket", "stream_socket", Path("/run/a\x01b")),
        # Its own key (a trailing space keeps it apart from the stream socket's in the dict).
        ("the live-reload socket ", "notify_socket", Path("/run/a\x1bb")),
    ]
    for key, field, folder in cases:
        with pytest.raises(ConfigError) as raised:
            plan.nginx_values(config, dataclasses.replace(facts, **{field: folder}), sendfile=True)  # type: ignore[arg-type]
        shown = repr(str(folder))
        assert str(raised.value) == (
            f"devstack.toml: {key}: {shown} holds a control character nginx.conf cannot carry — rename it"
        )


def test_sendfile_on_a_shared_folder_is_warned_with_the_folder(tmp_path: Path) -> None:
    config = configured(tmp_path, server='sendfile = "on"')
    the_plan = built(config, static_fstype="vboxsf")
    assert the_plan.sendfile is True
    assert (
        f"sendfile is on but {config.static_dir} is on vboxsf: nginx may serve stale or truncated files "
        '— set server.sendfile = "auto"'
    ) in the_plan.warnings
    assert not [w for w in built(config).warnings if w.startswith("sendfile")]  # ext4: no warning
    off = configured(tmp_path / "off", server='sendfile = "off"')
    assert built(off, static_fstype="vboxsf").warnings == []
    no_static = built(config, has_static=False, static_fstype="vboxsf")
    assert f"sendfile is on but {config.app_dir} is on vboxsf" in " ".join(no_static.warnings)
    assert (
        f"no static folder ({config.static_dir} does not exist): nginx proxies every path to gunicorn "
        "and the freshness watcher has nothing to watch"
    ) in no_static.warnings


def test_gunicorn_spec_whole(tmp_path: Path) -> None:
    config = configured(tmp_path, app='reload_engine = "poll"\nthreads = 7')
    facts = make_facts(config, dotenv={"FROM_DOTENV": "1", "DEVSTACK": "from .env"})
    gunicorn = spec(plan.build(config, facts, colors=False), "gunicorn")
    assert gunicorn.argv == [
        "/project/.venv/bin/python",
        "-m",
        "gunicorn",
        "--config",
        GUNICORN_CONF,
        "--chdir",
        str(config.app_dir),
        "--bind",
        f"127.0.0.1:{config.server.app_port}",
        *GTHREAD_FLAGS,
        "--threads",
        "7",
        "--control-socket",
        str(facts.control_socket),
        "--reload",
        "--reload-engine",
        "poll",
        "--reload-extra-file",
        str(config.app_dir / "templates/*.html"),
        "app:app",
    ]
    assert (gunicorn.cwd, gunicorn.restart, gunicorn.stop_signal, gunicorn.own_deathsig) == (
        config.app_dir,
        "app",
        "SIGQUIT",
        True,
    )
    env = gunicorn.env
    assert env["FROM_DOTENV"] == "1" and env["DEVSTACK"] == "1"  # devstack's own over .env
    assert (env["DEVSTACK_WORKER"], env["GUNICORN_CMD_ARGS"], env["NO_COLOR"]) == ("gthread", "", "1")
    assert env["DEVSTACK_LIVE_NOTIFY"] == str(facts.notify_socket)


def test_gunicorn_spec_without_threads_reload_or_live_reload(tmp_path: Path) -> None:
    config = configured(tmp_path, app='worker = "gevent"\nreload = false', server="live_reload = false")
    facts = make_facts(
        config, app_python=dataclasses.replace(make_facts(config).app_python, gunicorn=(25, 0))
    )
    facts = dataclasses.replace(
        facts, app_python=dataclasses.replace(facts.app_python, has=facts.app_python.has | {"gevent"})
    )
    the_plan = plan.build(config, facts, colors=True)
    assert the_plan.reload_engine == "off"
    gunicorn = spec(the_plan, "gunicorn")
    for absent in ("--threads", "--control-socket", "--reload", "--reload-engine"):
        assert absent not in gunicorn.argv
    assert gunicorn.argv[gunicorn.argv.index("--worker-class") + 1] == "gevent"
    assert "DEVSTACK_LIVE_NOTIFY" not in gunicorn.env and gunicorn.env["FORCE_COLOR"] == "1"
    at_25_1 = dataclasses.replace(facts, app_python=dataclasses.replace(facts.app_python, gunicorn=(25, 1)))
    assert "--control-socket" in spec(plan.build(config, at_25_1), "gunicorn").argv


def test_nginx_spec_whole(tmp_path: Path) -> None:
    config = configured(tmp_path)
    facts = make_facts(config)
    nginx = plan.nginx_spec(facts)
    assert nginx.argv == [
        "/usr/sbin/nginx",
        "-p",
        str(facts.state_dir),
        "-c",
        "nginx.conf",
        "-e",
        "stderr",
        "-g",
        "daemon off;",
    ]
    assert (nginx.name, nginx.cwd, nginx.env, nginx.restart) == ("nginx", facts.state_dir, {}, "always")
    assert (nginx.stdout_source, nginx.stderr_source) == ("nginx.access", "nginx.error")


PY = "/project/.venv/bin/python"
SOURCES = {
    "explicit threading": "socketio = SocketIO(app, async_mode='threading')\n",
    "explicit gevent": "socketio = SocketIO(app, async_mode='gevent')\n",
    "explicit eventlet": "socketio = SocketIO(app, async_mode='eventlet')\n",
    "eventlet patch": "import eventlet\neventlet.monkey_patch()\nsocketio = SocketIO(app)\n",
    "gevent patch": "from gevent import monkey\nmonkey.patch_all()\nsocketio = SocketIO(app, "
    "async_mode='threading')\n",
    "auto": "socketio = SocketIO(app)\n",
}
EVENTLET_FIX = (
    "use SocketIO(app, async_mode='threading'){drop}, or async_mode='gevent' with "
    'worker = "gevent" in devstack.toml, '
)


@pytest.mark.parametrize(
    ("worker", "modules", "version", "source", "said"),
    [
        (
            "eventlet",
            ("flask_socketio", "eventlet", "simple_websocket"),
            (26,),
            "explicit threading",
            "devstack.toml: app.worker: gunicorn 26 has no eventlet worker (removed in 26.0) — use worker "
            '= "gthread" '
            '(or "gevent"), or pin gunicorn<26',
        ),
        (
            "eventlet",
            ("flask_socketio", "eventlet", "simple_websocket"),
            (27, 0, 1),
            "explicit threading",
            "devstack.toml: app.worker: gunicorn 27.0.1 has no eventlet worker (removed in 26.0) — use "
            'worker = "gthread" (or "gevent"), or pin gunicorn<26',
        ),
        (
            "gevent",
            ("flask_socketio", "simple_websocket"),
            (25, 1),
            "explicit threading",
            f"devstack.toml: app.worker: gevent is not installed in the app's python {PY} — {PY} -m pip "
            "install "
            'gevent, or use worker = "gthread"',
        ),
        (
            "gevent",
            ("flask_socketio", "gevent"),
            (26,),
            "explicit gevent",
            "devstack.toml: app.worker: gunicorn 26's gevent worker needs packaging, which gunicorn 26+ "
            "installs "
            f"only with its gevent extra (not installed in {PY}) — {PY} -m pip install 'gunicorn[gevent]', "
            'or use worker = "gthread"',
        ),
        (
            "gthread",
            ("flask",),
            (25, 1),
            "explicit threading",
            f"app imports flask_socketio, which is not installed in the app's python {PY} (.venv/ in the "
            "project) "
            f"— {PY} -m pip install flask-socketio simple-websocket",
        ),
        (
            "gthread",
            ("flask",),
            None,
            "explicit threading",
            f"gunicorn is not installed in the app's python {PY} (.venv/ in the project) — {PY} -m pip "
            "install "
            "'gunicorn>=23' simple-websocket",
        ),
        (
            "gthread",
            ("flask_socketio", "simple_websocket"),
            (25, 1),
            "explicit gevent",
            "app.py:1: SocketIO(app, async_mode='gevent') needs the gevent worker — set worker = "
            '"gevent" in '
            "devstack.toml, or use async_mode='threading'",
        ),
        (
            "gthread",
            ("flask_socketio", "simple_websocket", "eventlet"),
            (26,),
            "eventlet patch",
            "app.py:2: eventlet.monkey_patch() needs gunicorn's eventlet worker and gunicorn 26 has no "
            "eventlet "
            "worker (removed in 26.0) — "
            + EVENTLET_FIX.format(drop=" without eventlet.monkey_patch()")
            + f"or pin gunicorn<26 ({PY} -m pip install 'gunicorn<26') and set worker = \"eventlet\"",
        ),
        (
            "gthread",
            ("flask_socketio", "simple_websocket", "eventlet"),
            (25, 1),
            "explicit eventlet",
            "app.py:1: SocketIO(app, async_mode='eventlet') needs gunicorn's eventlet worker and devstack "
            "runs the "
            "gthread worker — "
            + EVENTLET_FIX.format(drop="")
            + 'or set worker = "eventlet" in devstack.toml (deprecated; gone in gunicorn 26)',
        ),
    ],
)
def test_refusals_are_one_whole_line(
    tmp_path: Path,
    worker: str,
    modules: tuple[str, ...],
    version: tuple[int, ...] | None,
    source: str,
    said: str,
) -> None:

    with pytest.raises(DevstackError) as raised:
        built_for(tmp_path, worker, modules, version, source)
    assert str(raised.value) == said


@pytest.mark.parametrize(
    ("worker", "modules", "version", "source", "warnings", "notes"),
    [
        (
            "eventlet",
            ("flask_socketio", "eventlet", "simple_websocket"),
            (25, 1),
            "explicit threading",
            [
                "the eventlet worker is deprecated and gone in gunicorn 26+; eventlet itself is bug-fix-only "
                '— prefer worker = "gthread"'
            ],
            [],
        ),
        (
            "gthread",
            ("flask_socketio",),
            (25, 1),
            "explicit threading",
            [
                f"simple-websocket is not installed in the app's python {PY}: Socket.IO falls back to "
                f"long-polling under gthread — {PY} -m pip install simple-websocket"
            ],
            [],
        ),
        (
            "gthread",
            ("flask_socketio", "simple_websocket"),
            (25, 1),
            "gevent patch",
            [
                "app.py:2: monkey.patch_all() asks for the gevent worker, and devstack runs gthread — "
                'set worker = "gevent" in devstack.toml'
            ],
            [],
        ),
        (
            "gthread",
            ("flask_socketio", "simple_websocket", "gevent"),
            (25, 1),
            "auto",
            [],
            [
                "app.py:1: SocketIO(app) names no async_mode, so Flask-SocketIO would pick gevent "
                "(installed), "
                "which the gthread worker cannot run: devstack has it use threading — make it explicit with "
                'SocketIO(app, async_mode="threading")'
            ],
        ),
        ("gthread", ("flask_socketio", "simple_websocket"), (25, 1), "auto", [], []),
    ],
)
def test_warnings_and_notes_are_whole_lines(
    tmp_path: Path,
    worker: str,
    modules: tuple[str, ...],
    version: tuple[int, ...],
    source: str,
    warnings: list[str],
    notes: list[str],
) -> None:

    the_plan = built_for(tmp_path, worker, modules, version, source)
    assert (the_plan.warnings, the_plan.notes) == (warnings, notes)


def test_auto_mode_is_the_first_that_imports() -> None:

    assert plan.auto_mode(python_with("eventlet", "gevent")) == "eventlet"
    assert plan.auto_mode(python_with("gevent")) == "gevent"
    assert plan.auto_mode(python_with("flask")) == "threading"


COLOR_KEYS = ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "NO_COLOR")


def colors_of(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key in COLOR_KEYS}


def test_children_keep_their_colors_unless_asked_otherwise(tmp_path: Path) -> None:
    """colors defaults to True in build, gunicorn_spec and extra_specs alike (`devstack doctor`
    plans without it); build(colors=False) is kept in the plan for a re-plan to ask the same."""
    config = configured(tmp_path, extra='[processes]\ncss = "tailwind --watch"\n')
    facts = make_facts(config)
    on = {"FORCE_COLOR": "1", "CLICOLOR_FORCE": "1", "PY_COLORS": "1"}
    default = plan.build(config, facts)
    assert default.colors is True
    assert colors_of(spec(default, "gunicorn").env) == on
    assert colors_of(spec(default, "css").env) == on
    assert colors_of(plan.gunicorn_spec(config, facts, "off").env) == on
    assert colors_of(plan.extra_specs(config, facts, [])[0].env) == on
    plain = plan.build(config, facts, colors=False)
    assert plain.colors is False
    assert colors_of(spec(plain, "gunicorn").env) == {"NO_COLOR": "1"}


RELOAD_EXTRA = "templates/*.html"


@pytest.mark.parametrize(
    ("worker", "modules", "fstype", "warnings", "engine"),
    [
        ("gthread", ("inotify",), "ext4", [], "inotify"),
        (
            "gthread",
            (),
            "ext4",
            [
                "reload_engine inotify replaced by poll: the inotify package is not installed in "
                f"{PY} ({PY} -m pip install inotify)"
            ],
            "poll",
        ),
        (
            "gthread",
            ("inotify",),
            "virtiofs",
            ["reload_engine inotify replaced by poll: inotify misses virtiofs edits"],
            "poll",
        ),
        (
            "gevent",
            ("gevent", "inotify"),
            "ext4",
            ["reload_engine inotify replaced by poll: it crashes gevent workers at boot"],
            "poll",
        ),
    ],
)
def test_reload_engine_inotify_or_the_poll_that_replaces_it(
    tmp_path: Path, worker: str, modules: tuple[str, ...], fstype: str, warnings: list[str], engine: str
) -> None:
    config = configured(tmp_path, app=f'worker = "{worker}"\nreload_engine = "inotify"')
    app = python_with("flask", "flask_socketio", "simple_websocket", *modules)
    the_plan = built(config, app_python=app, static_fstype=fstype)
    assert the_plan.warnings == warnings
    assert the_plan.reload_engine == engine
    argv = spec(the_plan, "gunicorn").argv
    assert argv[argv.index("--reload") :] == [
        "--reload",
        "--reload-engine",
        engine,
        "--reload-extra-file",
        str(config.app_dir / RELOAD_EXTRA),
        "app:app",
    ]


def test_nginx_values_whole(tmp_path: Path) -> None:
    config = configured(tmp_path, app="nodes = 3")
    facts = make_facts(config, redis="/usr/bin/redis-server", queue_secret="s" * 32)
    port = config.server.app_port
    assert plan.nginx_values(config, facts, sendfile=True) == {
        "prefix": str(facts.state_dir),
        "listen": f"127.0.0.1:{config.server.listen_port}",
        "app_port": port,
        "app_ports": [str(port), str(port + 1), str(port + 2)],
        "node_split": [
            {"share": "33.33%", "node": "1"},
            {"share": "33.33%", "node": "2"},
            {"share": "*", "node": "3"},
        ],
        "node_cookie": "devstack_node",
        "static_url": "/static/",
        "static_dir": str(facts.static_alias),
        "extra_static": [],
        "autoindex": False,
        "sendfile": True,
        "static_fstype": "ext4",
        "proxy_read_timeout": config.server.proxy_read_timeout,
        "mime_types": "/etc/nginx/mime.types",
        "error_log_level": "warn",
        "user": "",
        "live_socket": str(facts.stream_socket),
        "live_notify": str(facts.notify_socket),
        "server_names": ["127.0.0.1", "localhost", "[::1]", "*.localhost"],
        "root_private": rootstatic.NGINX_REGEX,
    }


def test_a_listen_host_of_every_interface_is_no_server_name(tmp_path: Path) -> None:
    # devstack.toml's listen takes no "*"; a config derived by fields (as the VM guest's) may.
    config = configured(tmp_path)
    every = dataclasses.replace(config, server=dataclasses.replace(config.server, listen_host="*"))
    assert plan.server_names(every) == ["localhost", "127.0.0.1", "[::1]", "*.localhost"]
