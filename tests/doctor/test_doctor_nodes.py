"""doctor on several Socket.IO nodes: real broken setups (three real gunicorns behind a real
nginx, a real redis-server) fire socketio.sticky, socketio.message-queue,
socketio.queue-reachable and nginx.ip-hash-local; devstack's own app.nodes = 3 stack passes."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.test_nodes import nodes_project
from tests.support.doctor import doctor, finding, gunicorn, nginx, render, statuses
from tests.support.require import have, needs
from tests.support.stack import REPO, free_ports, kill_leftovers

pytestmark = [
    pytest.mark.needs_nginx,
    needs(
        have("redis-server", Path("/usr/bin/redis-server")),
        "redis-server is not installed (apt-get install redis-server)",
    ),
]

NODE_CHECKS = ("socketio.sticky", "socketio.message-queue", "socketio.queue-reachable", "nginx.ip-hash-local")


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nodes") / "nodes"
    shutil.copytree(
        REPO / "examples" / "nodes", root, ignore=shutil.ignore_patterns(".devstack", "__pycache__")
    )
    return root


@contextlib.contextmanager
def redis_server(port: int, base: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from devstack.system import ports

        assert ports.wait_port("127.0.0.1", port, 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def three_nodes(app_dir: Path, env: dict[str, str]) -> Iterator[list[int]]:
    ports = free_ports(3)
    with contextlib.ExitStack() as stack:
        for index, port in enumerate(ports, start=1):
            stack.enter_context(
                gunicorn(
                    app_dir,
                    port,
                    "-k",
                    "gthread",
                    "-w",
                    "1",
                    "--threads",
                    "8",
                    env={**env, "DEVSTACK_NODE": str(index)},
                    log=app_dir.parent / f"node{index}.log",
                )
            )
        yield ports


def balanced_conf(tmp: Path, listen: int, ports: list[int], static: Path, balancing: str) -> str:
    text = render(tmp, listen, ports[0], static)
    servers = "".join(f"        server 127.0.0.1:{port};\n" for port in ports)
    old = f"    upstream app {{\n        server 127.0.0.1:{ports[0]};\n    }}"
    assert old in text
    return text.replace(old, f"    upstream app {{\n{balancing}{servers}    }}")


def run_doctor(url: str, conf: Path, static: Path, *extra: str) -> dict[str, object]:
    _, report = doctor(
        "--url", url, "--nginx-conf", str(conf), "--static-dir", str(static), *extra, *NODE_CHECKS
    )
    return report


def test_round_robin_without_a_queue_fires_sticky_and_message_queue(app_dir: Path, tmp_path: Path) -> None:
    static = app_dir / "static"
    listen = free_ports(1)[0]
    with (
        three_nodes(app_dir, {"REDIS_URL": ""}) as ports,
        nginx(balanced_conf(tmp_path, listen, ports, static, ""), tmp_path / "ngx", listen) as conf,
    ):
        report = run_doctor(f"http://127.0.0.1:{listen}", conf, static)
    states = statuses(report)
    assert states["socketio.sticky"] == "error", finding(report, "socketio.sticky")
    sticky = finding(report, "socketio.sticky")
    assert "3 app servers and no sticky sessions" in sticky["finding"]
    assert any("HTTP 400" in e["text"] for e in sticky["evidence"]), sticky
    assert "split_clients" in sticky["fix"]
    assert states["socketio.message-queue"] == "error"
    assert "no message queue" in finding(report, "socketio.message-queue")["finding"]
    assert states["nginx.ip-hash-local"] == "ok"  # not chosen by client address
    assert states["socketio.queue-reachable"] == "ok"


def test_ip_hash_with_local_clients_fires(app_dir: Path, tmp_path: Path) -> None:
    static = app_dir / "static"
    listen, redis_port = free_ports(2)
    with redis_server(redis_port, tmp_path) as queue, three_nodes(app_dir, {"REDIS_URL": queue}) as ports:
        text = balanced_conf(tmp_path, listen, ports, static, "        ip_hash;\n")
        with nginx(text, tmp_path / "ngx", listen) as conf:
            report = run_doctor(f"http://127.0.0.1:{listen}", conf, static, "--queue-url", queue)
    states = statuses(report)
    ip_hash = finding(report, "nginx.ip-hash-local")
    assert states["nginx.ip-hash-local"] == "warning", ip_hash
    assert "every local client has the same address" in ip_hash["finding"]
    assert any(e["text"] == "ip_hash;" for e in ip_hash["evidence"])
    # ip_hash does keep a session on its node, and the queue is used by all three.
    assert states["socketio.sticky"] == "ok", finding(report, "socketio.sticky")
    assert states["socketio.message-queue"] == "ok", finding(report, "socketio.message-queue")


def test_a_queue_the_nodes_do_not_use_and_one_that_is_down(app_dir: Path, tmp_path: Path) -> None:
    static = app_dir / "static"
    listen, redis_port, dead_port = free_ports(3)
    with redis_server(redis_port, tmp_path) as queue, three_nodes(app_dir, {"REDIS_URL": ""}) as ports:
        text = balanced_conf(tmp_path, listen, ports, static, "        hash $remote_port;\n")
        with nginx(text, tmp_path / "ngx", listen) as conf:
            unused = run_doctor(f"http://127.0.0.1:{listen}", conf, static, "--queue-url", queue)
            dead = run_doctor(
                f"http://127.0.0.1:{listen}", conf, static, "--queue-url", f"redis://127.0.0.1:{dead_port}/0"
            )
    mq = finding(unused, "socketio.message-queue")
    assert statuses(unused)["socketio.message-queue"] == "error", mq
    assert "3 nodes and 0 subscriber(s) to 'flask-socketio'" in mq["finding"]
    assert any("PUBSUB NUMSUB flask-socketio" in e["text"] for e in mq["evidence"])
    assert statuses(unused)["socketio.queue-reachable"] == "ok"
    reach = finding(dead, "socketio.queue-reachable")
    assert statuses(dead)["socketio.queue-reachable"] == "error", reach
    assert f"127.0.0.1:{dead_port}" in reach["finding"]


def test_devstacks_own_three_nodes_pass(tmp_path: Path) -> None:
    project = nodes_project(tmp_path)
    try:
        project.up_detached(timeout=90)
        code, report = doctor(*NODE_CHECKS, cwd=project.root)
        states = statuses(report)
        assert states == {
            "socketio.sticky": "ok",
            "socketio.message-queue": "ok",
            "socketio.queue-reachable": "ok",
            "nginx.ip-hash-local": "ok",
        }, [finding(report, k) for k in states]
        assert "3 nodes, 3 subscribers" in finding(report, "socketio.message-queue")["finding"]
        assert code == 0
    finally:
        project.down()
        kill_leftovers(project.root)
