"""app.nodes = 3, for real: three gunicorns, redis-server and nginx started by `devstack up`,
proven at start (every node, the queue's subscribers, an emit through the queue reaching each
node, a polling session staying on its node), then checked from outside with python-socketio's
own clients, across a code reload, and gone after `down`."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from devstack.stack import nodes, probes
from tests.support.require import have, needs
from tests.support.stack import REPO, Project, kill_leftovers, processes_under

pytestmark = [
    pytest.mark.needs_nginx,
    needs(
        have("redis-server", Path("/usr/bin/redis-server")),
        "redis-server is not installed (apt-get install redis-server)",
    ),
]

EXAMPLE = REPO / "examples" / "nodes"


def consecutive_free_ports(count: int) -> int:
    """A base port with count free ports from it (the nodes' ports and the queue's)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + count >= 65000:
            continue
        try:
            held = []
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free port range")


def nodes_project(base: Path, count: int = 3, app_edit: str = "") -> Project:
    root = base / "nodes"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    if app_edit:
        app = root / "app.py"
        app.write_text(app.read_text().replace('    message_queue=os.environ.get("REDIS_URL"),', app_edit))
    app_port = consecutive_free_ports(count + 2)
    project = Project(root, app_port + count + 1, app_port)
    project.config_path.write_text(
        f'[app]\nwsgi = "app:app"\nnodes = {count}\n\n[queue]\nenv = "REDIS_URL"\n\n'
        f'[server]\nlisten = "127.0.0.1:{project.public_port}"\napp_port = {app_port}\n'
    )
    return project


@pytest.fixture
def multi(tmp_path: Path) -> Iterator[Project]:
    project = nodes_project(tmp_path)
    yield project
    project.down()
    left = processes_under(project.root)
    killed = kill_leftovers(project.root)
    assert not left, f"processes left behind: {killed}"


def queue_url(project: Project) -> str:
    secret = (project.state_dir / "queue.secret").read_text().strip()
    return f"redis://:{secret}@127.0.0.1:{project.app_port + 3}/0"


def pinned_client(url: str, node: int, transports: list[str]) -> tuple[socketio.Client, list[dict[str, str]]]:
    client = socketio.Client(reconnection=False)
    got: list[dict[str, str]] = []
    client.on("chat", got.append)
    client.connect(url, headers={"Cookie": f"devstack_node={node}"}, transports=transports, wait_timeout=5)
    return client, got


def wait_for(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_three_nodes_are_proven_at_up_and_deliver_across_nodes(multi: Project) -> None:
    result = multi.up_detached(timeout=90)
    said = result.stderr
    assert "every node answers through nginx" in said, said
    assert "stayed on its node" in said, said
    assert (
        "an emit through the message queue reached a client on each of the 3 nodes (3 subscribers" in said
    ), said

    # From outside: python-socketio clients pinned to each node; one node's broadcast reaches all.
    clients = [pinned_client(multi.url, node, ["websocket"]) for node in (1, 2, 3)]
    try:
        assert nodes.subscribers(queue_url(multi)) == 3
        clients[0][0].emit("chat", {"text": "from node 1"})
        for node, (_, got) in enumerate(clients, start=1):
            assert wait_for(lambda got=got: any(m["text"] == "from node 1" for m in got)), (
                f"node {node}: {got}"
            )
            assert got[0]["node"] == "1"
    finally:
        for client, _ in clients:
            client.disconnect()

    # Long-polling without a cookie of its own: nginx sets one, the session stays on its node.
    for _ in range(4):
        client = socketio.Client(reconnection=False)
        client.connect(multi.url, transports=["polling"], wait_timeout=5)
        client.emit("chat", {"text": "polling"})
        time.sleep(0.1)
        assert client.connected
        client.disconnect()

    status = multi.cli("status")
    for name in ("gunicorn.1", "gunicorn.2", "gunicorn.3", "redis", "nginx"):
        assert f"\n{name} " in status.stdout, status.stdout
    queue_line = (
        f"message queue: redis://:***@127.0.0.1:{multi.app_port + 3}/0 (run by devstack), in $REDIS_URL"
    )
    assert queue_line in status.stdout, status.stdout
    # The queue is this user's: a password (never in argv, state.json or a file others can read).
    secret = (multi.state_dir / "queue.secret").read_text().strip()
    for name in ("queue.secret", "redis.conf"):
        assert (multi.state_dir / name).stat().st_mode & 0o077 == 0
    assert secret not in (multi.state_dir / "state.json").read_text()
    redis_pid = multi.state()["processes"]["redis"]["pid"]
    assert secret not in Path(f"/proc/{redis_pid}/cmdline").read_text()
    with pytest.raises(nodes.RedisError, match="NOAUTH"):
        nodes.redis_command(f"redis://127.0.0.1:{multi.app_port + 3}/0", "PUBSUB", "NUMSUB", "flask-socketio")
    logs = multi.cli("logs", "-n", "400", "gunicorn")
    for name in ("gunicorn.1", "gunicorn.2", "gunicorn.3"):
        assert name in logs.stdout, logs.stdout[-2000:]
    assert not (multi.state_dir / "dump.rdb").exists()


def test_different_clients_spread_over_the_nodes(multi: Project) -> None:
    multi.up_detached(timeout=90)
    seen = set()
    for _ in range(30):
        resp = probes.http_get(multi.url + "/node")
        cookie = resp.header("set-cookie") or ""
        assert cookie.startswith("devstack_node="), resp.headers
        body = json.loads(resp.body)
        assert cookie.split(";")[0] == f"devstack_node={body['node']}"
        seen.add(body["node"])
    assert seen == {"1", "2", "3"}
    # A client with its cookie is not given another one, and stays where it is.
    for node in ("1", "2", "3"):
        resp = probes.http_get(multi.url + "/node", headers={"Cookie": f"devstack_node={node}"})
        assert resp.header("set-cookie") is None and json.loads(resp.body)["node"] == node


def test_a_code_edit_reaches_every_node_while_the_site_answers(multi: Project) -> None:
    multi.up_detached(timeout=90)
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            for node in (1, 2, 3):
                try:
                    resp = probes.http_get(
                        multi.url + "/node", headers={"Cookie": f"devstack_node={node}"}, timeout=5
                    )
                    if resp.status != 200:
                        failures.append(f"node {node}: HTTP {resp.status}")
                except OSError as exc:
                    failures.append(f"node {node}: {exc}")
            time.sleep(0.01)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        app = multi.root / "app.py"
        app.write_text(
            app.read_text().replace('"pid": str(os.getpid())', '"pid": str(os.getpid()), "v": "2"')
        )

        def all_new() -> bool:
            for node in (1, 2, 3):
                resp = probes.http_get(multi.url + "/node", headers={"Cookie": f"devstack_node={node}"})
                if json.loads(resp.body).get("v") != "2":
                    return False
            return True

        assert wait_for(all_new, timeout=15)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not failures, failures[:5]
    logs = multi.cli("logs", "-n", "300", "gunicorn").stdout
    for name in ("gunicorn.1", "gunicorn.2", "gunicorn.3"):
        assert f"{name}" in logs and "reloading" in logs


def test_a_node_without_the_queue_is_named_with_the_fix(tmp_path: Path) -> None:
    edit = (
        '    message_queue=None if os.environ.get("DEVSTACK_NODE") == "2" else os.environ.get("REDIS_URL"),'
    )
    project = nodes_project(tmp_path, app_edit=edit)
    try:
        result = project.cli("up", "--detach", timeout=90)
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if "message queue" in line]
        assert len(lines) == 1, result.stderr
        line = lines[0]
        assert "node 2 (gunicorn.2, 127.0.0.1:" in line and "node 1 " not in line and "node 3 " not in line
        assert "2 subscriber(s) to 'flask-socketio' for 3 nodes" in line
        assert 'SocketIO(app, message_queue=os.environ["REDIS_URL"])' in line
    finally:
        project.down()
        kill_leftovers(project.root)
    assert not processes_under(project.root)
