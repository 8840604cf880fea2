"""app.nodes and [queue], planned over hand-made facts: what N > 1 adds, and that N = 1 (the
default) plans exactly what it planned before (no queue, one "gunicorn", one upstream)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack import GUNICORN_CONF
from devstack.errors import ConfigError, DevstackError
from devstack.project import config as config_mod
from devstack.project.config import Config
from devstack.stack import facts, plan
from tests.support.facts import GTHREAD_FLAGS, make_facts
from tests.support.stack import Project, make_project

pytestmark = pytest.mark.unit


def configured(tmp_path: Path, app: str = "", extra: str = "") -> tuple[Project, Config]:
    project = make_project(tmp_path)
    project.write_config(app=app, extra=extra)
    return project, config_mod.load(project.config_path)


def planned(config: Config) -> plan.Plan:
    facts = make_facts(config, redis="/usr/bin/redis-server", queue_secret="s" * 32)
    return plan.build(config, facts, colors=False)


def test_one_node_is_todays_stack(tmp_path: Path) -> None:
    _, config = configured(tmp_path)
    the_plan = planned(config)
    assert [spec.name for spec in the_plan.processes] == ["gunicorn", "nginx"]
    assert not config.queue.enabled and config.queue_url == ""
    app = the_plan.processes[0]
    assert "REDIS_URL" not in app.env and "DEVSTACK_NODE" not in app.env
    assert "--name" not in app.argv
    conf = the_plan.nginx_conf
    assert "upstream devstack_app {" in conf and "devstack_node" not in conf and "split_clients" not in conf


def test_three_nodes_three_gunicorns_a_queue_and_sticky_nginx(tmp_path: Path) -> None:
    project, config = configured(tmp_path, app="nodes = 3")
    the_plan = planned(config)
    names = [spec.name for spec in the_plan.processes]
    assert names == ["gunicorn.1", "gunicorn.2", "gunicorn.3", "redis", "nginx"]
    assert config.queue_url == f"redis://127.0.0.1:{project.app_port + 3}/0"
    queue = f"redis://:{'s' * 32}@127.0.0.1:{project.app_port + 3}/0"  # with the password
    for index, spec in enumerate(the_plan.processes[:3], start=1):
        argv = spec.argv
        assert argv[argv.index("--bind") + 1] == f"127.0.0.1:{project.app_port + index - 1}"
        assert argv[argv.index("--workers") + 1] == "1"
        assert argv[argv.index("--control-socket") + 1].endswith(f"node{index}.ctl")
        assert spec.env["REDIS_URL"] == queue and spec.env["DEVSTACK_NODE"] == str(index)
        assert spec.restart == "app" and plan.is_app(spec.name)
    redis = the_plan.processes[3]
    conf_path = the_plan.facts.state_dir / "redis.conf"
    assert redis == plan.ProcessSpec(
        name="redis",
        argv=["/usr/bin/redis-server", str(conf_path)],  # no password in argv (ps)
        cwd=the_plan.facts.state_dir,
        env={},
        restart="always",
    )
    redis_lines = plan.redis_conf(config, the_plan.facts).splitlines()
    for line in (
        "bind 127.0.0.1",
        f"port {project.app_port + 3}",
        "protected-mode yes",
        f"requirepass {'s' * 32}",
        'save ""',
        "appendonly no",
        'logfile ""',
    ):
        assert line in redis_lines, redis_lines
    conf = the_plan.nginx_conf
    for index in (1, 2, 3):
        assert (
            f"upstream devstack_node{index} {{\n        server 127.0.0.1:{project.app_port + index - 1};"
            in conf
        )
    assert 'split_clients "${request_id}" $devstack_new_node {' in conf
    assert re.search(r"33\.33% 1;\s+33\.33% 2;\s+\* 3;", conf)
    assert "proxy_pass http://devstack_node$devstack_node;" in conf
    assert "add_header Set-Cookie $devstack_node_cookie;" in conf
    assert "ip_hash" not in conf.replace("Not ip_hash", "")


def test_queue_env_name_and_extra_processes(tmp_path: Path) -> None:
    _, config = configured(
        tmp_path, app="nodes = 2", extra='[queue]\nenv = "SOCKETIO_QUEUE"\n[processes]\nw = "sleep 1"'
    )
    the_plan = planned(config)
    extra = next(spec for spec in the_plan.processes if spec.name == "w")
    assert extra.env["SOCKETIO_QUEUE"] == plan.queue_url(config, the_plan.facts)
    assert extra.env["SOCKETIO_QUEUE"].startswith("redis://:ssss")
    assert "REDIS_URL" not in extra.env


def test_external_queue_is_not_started(tmp_path: Path) -> None:
    _, config = configured(tmp_path, app="nodes = 2", extra='[queue]\nurl = "redis://127.0.0.1:6390/2"')
    the_plan = planned(config)
    assert "redis" not in [spec.name for spec in the_plan.processes]
    assert the_plan.processes[0].env["REDIS_URL"] == "redis://127.0.0.1:6390/2"


def test_a_queue_table_with_one_node_starts_a_queue(tmp_path: Path) -> None:
    _, config = configured(tmp_path, extra="[queue]")
    assert [spec.name for spec in planned(config).processes] == ["gunicorn", "redis", "nginx"]


@pytest.mark.parametrize(
    ("app", "extra", "key", "words"),
    [
        ("nodes = 0", "", "app.nodes", "out of range"),
        ("nodes = 17", "", "app.nodes", "out of range"),
        ('nodes = "3"', "", "app.nodes", "expected an integer"),
        ("nodes = 2", '[queue]\nurl = "redis://10.0.0.5:6379/0"', "queue.url", "not a loopback Redis URL"),
        ("nodes = 2", '[queue]\nurl = "amqp://127.0.0.1:5672"', "queue.url", "not a loopback Redis URL"),
        ("nodes = 2", '[queue]\nenv = "REDIS URL"', "queue.env", "not a variable name"),
        ("nodes = 2", "[queue]\nbogus = 1", "queue.bogus", "unknown key"),
        ("nodes = 2", '[processes]\nredis = "redis-server"', "processes.redis", "runs the message queue"),
    ],
)
def test_bad_nodes_and_queue_are_one_line(tmp_path: Path, app: str, extra: str, key: str, words: str) -> None:
    project = make_project(tmp_path)
    project.write_config(app=app, extra=extra)
    with pytest.raises(ConfigError) as caught:
        config_mod.load(project.config_path)
    line = str(caught.value)
    assert "\n" not in line and key in line and words in line, line
    assert "devstack.toml" in line


def test_listen_inside_the_node_ports_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.config_path.write_text(
        f'[app]\nnodes = 3\n[server]\nlisten = "127.0.0.1:{project.app_port + 2}"\n'
        f"app_port = {project.app_port}\n"
    )
    with pytest.raises(ConfigError, match="one of the app ports"):
        config_mod.load(project.config_path)


def test_missing_redis_server_is_one_line_with_the_install_command(tmp_path: Path) -> None:
    _, config = configured(tmp_path, app="nodes = 3")
    with pytest.raises(DevstackError) as caught:
        facts.find_redis({"DEVSTACK_REDIS": str(tmp_path / "no-redis-server")})
    line = str(caught.value)
    assert "\n" not in line and "redis-server is not installed" in line
    assert "apt-get install redis-server" in line and "queue.url" in line
    assert config.queue.started


def test_changing_nodes_waits_for_the_next_up(tmp_path: Path) -> None:
    project, old = configured(tmp_path, app="nodes = 2")
    project.write_config(app="nodes = 3")
    new = config_mod.load(project.config_path)
    changes = plan.diff(old, planned(old), new, planned(new))
    assert changes.later == ("app.nodes and [queue]",)
    assert not changes.restart and not changes.remove and not changes.reload_nginx


def test_node_split_shares_add_up() -> None:
    for nodes in range(2, 17):
        split = plan.node_split(nodes)
        assert [node for _, node in split] == list(range(1, nodes + 1))
        assert split[-1][0] == "*"
        assert sum(float(share.rstrip("%")) for share, _ in split[:-1]) < 100
    # Truncated to the hundredth, never rounded up (the last node takes what is left).
    assert plan.node_split(1) == [("*", 1)]
    assert plan.node_split(6) == [
        ("16.66%", 1),
        ("16.66%", 2),
        ("16.66%", 3),
        ("16.66%", 4),
        ("16.66%", 5),
        ("*", 6),
    ]


def test_the_queue_secret_is_kept_and_a_bad_one_is_replaced(tmp_path: Path) -> None:
    state = tmp_path / ".devstack"
    state.mkdir()
    assert facts.read_queue_secret(state) == ""
    (state / "queue.secret").write_text("0123456789abcdef0123456789abcdef\n")
    assert facts.read_queue_secret(state) == "0123456789abcdef0123456789abcdef"
    (state / "queue.secret").write_text("short\n")
    assert facts.read_queue_secret(state) == ""
    assert len(facts.new_queue_secret()) == 32 and facts.new_queue_secret() != facts.new_queue_secret()


def test_a_queue_without_the_redis_package_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    """Without it every node's SocketIO(message_queue=...) only retries "Cannot receive from
    redis", and the proof could only count 0 subscribers."""
    from tests.support.facts import python_with

    _, config = configured(tmp_path, app="nodes = 3")
    app = python_with("flask", "flask_socketio", "simple_websocket")
    facts = make_facts(config, redis="/usr/bin/redis-server", queue_secret="s" * 32, app_python=app)
    with pytest.raises(DevstackError) as err:
        plan.build(config, facts, colors=False)
    assert str(err.value) == (
        "the message queue needs the redis package in the app's python /project/.venv/bin/python "
        "(.venv/ in the project): Flask-SocketIO's message_queue= cannot reach Redis without it — "
        "/project/.venv/bin/python -m pip install redis"
    )


def test_a_node_spec_whole(tmp_path: Path) -> None:
    """Node N of several: its port, its control socket, its name in `ps` and the logs, its
    number and the queue in its environment, and the colors the plan was asked for."""
    project, config = configured(tmp_path, app="nodes = 2")
    the_plan = planned(config)  # colors=False
    facts = the_plan.facts
    assert the_plan.processes[1] == plan.ProcessSpec(
        name="gunicorn.2",
        argv=[
            "/project/.venv/bin/python",
            "-m",
            "gunicorn",
            "--config",
            GUNICORN_CONF,
            "--chdir",
            str(config.app_dir),
            "--bind",
            f"127.0.0.1:{project.app_port + 1}",
            *GTHREAD_FLAGS,
            "--threads",
            str(config.app.threads),
            "--control-socket",
            str(facts.control_socket.with_name("node2.ctl")),
            "--name",
            "gunicorn.2",
            "app:app",
        ],
        cwd=config.app_dir,
        env={
            "PYTHONUNBUFFERED": "1",
            "DEVSTACK": "1",
            "DEVSTACK_PUBLIC_URL": config.public_url,
            "DEVSTACK_ASYNC_MODE": "threading",
            "NO_COLOR": "1",
            "REDIS_URL": f"redis://:{'s' * 32}@127.0.0.1:{project.app_port + 2}/0",
            "DEVSTACK_WORKER": "gthread",
            "DEVSTACK_NODE": "2",
            "GUNICORN_CMD_ARGS": "",
            "DEVSTACK_LIVE_NOTIFY": str(facts.notify_socket),
        },
        restart="app",
        stop_signal="SIGQUIT",
        own_deathsig=True,
    )


def test_redis_conf_whole_with_a_state_dir_redis_would_misread(tmp_path: Path) -> None:
    """The state dir is a value in redis.conf, never its syntax: a double quote and a backslash
    in it are escaped inside the quoted dir (redis reads \\" and \\\\ there)."""
    _, config = configured(tmp_path, app="nodes = 2")
    odd = make_facts(config, state_dir=Path('/srv/say "hi"\\now'), queue_secret="s" * 32)
    assert plan.redis_conf(config, odd) == (
        "# Written by devstack for the message queue of app.nodes > 1; rewritten by every `up`.\n"
        "bind 127.0.0.1\n"
        f"port {config.queue_port}\n"
        "protected-mode yes\n"
        f"requirepass {'s' * 32}\n"
        'save ""\n'
        "appendonly no\n"
        'dir "/srv/say \\"hi\\"\\\\now"\n'
        "daemonize no\n"
        'logfile ""\n'
    )


def test_every_node_gets_the_plans_reload_engine_and_colors(tmp_path: Path) -> None:
    _, config = configured(tmp_path, app='nodes = 2\nreload_engine = "poll"')
    facts = make_facts(config, redis="/usr/bin/redis-server", queue_secret="s" * 32)
    the_plan = plan.build(config, facts, colors=True)
    for node in the_plan.processes[:2]:
        argv = node.argv
        assert argv[argv.index("--reload") :] == [
            "--reload",
            "--reload-engine",
            "poll",
            "--reload-extra-file",
            str(config.app_dir / "templates/*.html"),
            "--name",
            node.name,
            "app:app",
        ]
        colors = {
            k: v
            for k, v in node.env.items()
            if k in ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "NO_COLOR")
        }
        assert colors == {"FORCE_COLOR": "1", "CLICOLOR_FORCE": "1", "PY_COLORS": "1"}
