"""Issue 2 acceptance: the whole stack, real nginx + real gunicorn + real Socket.IO clients."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import socketio

from devstack.stack import probes
from devstack.system import ports
from tests.support.stack import Project, cli_env, wait_for

pytestmark = pytest.mark.needs_nginx


def test_root_is_200_through_the_public_port(stack: Project) -> None:
    resp = probes.http_get(stack.url + "/")
    assert resp.status == 200
    assert resp.header("server") == "nginx"  # it went through nginx, not straight to gunicorn
    assert stack.state()["status"] == "ready"


def test_static_bytes_equal_disk_and_are_served_by_nginx(stack: Project) -> None:
    for rel in ("css/app.css", "js/app.js", "js/socket.io.min.js"):
        resp = probes.http_get(f"{stack.url}/static/{rel}")
        assert resp.status == 200
        assert resp.body == (stack.root / "static" / rel).read_bytes()
        assert resp.header("cache-control") == "no-store"
        assert resp.header("etag") is None  # no mtime-size validator to answer a stale 304 with


def test_second_edit_in_the_same_second_with_equal_size_is_served(stack: Project) -> None:
    css = stack.root / "static/css/app.css"
    first, second = b"h1 { color: rgb(1, 1, 1); }\n", b"h1 { color: rgb(2, 2, 2); }\n"
    assert len(first) == len(second)
    css.write_bytes(first)
    stamp = int(time.time())
    os.utime(css, (stamp, stamp))
    got_first = probes.http_get(stack.url + "/static/css/app.css")
    assert got_first.body == first
    css.write_bytes(second)
    os.utime(css, (stamp, stamp))  # same mtime second, same size: only the bytes differ
    validators = {"If-Modified-Since": got_first.header("last-modified") or ""}
    got_second = probes.http_get(stack.url + "/static/css/app.css", headers=validators)
    assert got_second.status == 200
    assert got_second.body == second


def test_nginx_starts_without_a_warning(stack: Project) -> None:
    path = stack.state_dir / "logs" / "nginx.error.log"  # made with nginx's first stderr line
    log = path.read_text(errors="replace") if path.exists() else ""
    assert "[warn]" not in log and "[emerg]" not in log, log


def test_socketio_websocket_echo_through_nginx(stack: Project) -> None:
    client = socketio.Client(reconnection=False)
    received: list[object] = []
    client.on("echo", received.append)
    client.connect(stack.url, transports=["websocket"], wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        client.emit("echo", {"n": 42})
        assert wait_for(lambda: received, timeout=10)
        assert received == [{"n": 42}]
    finally:
        client.disconnect()


def test_socketio_origin_with_public_port_is_accepted(stack: Project) -> None:
    result = probes.socketio_websocket(stack.url, origin=stack.url)
    assert result.ok, result.detail


def test_redirect_location_points_at_the_public_host_and_port(stack: Project) -> None:
    resp = probes.http_get(stack.url + "/go")
    assert resp.status == 302
    assert resp.header("location") == f"{stack.url}/"
    # As through a port forward: the browser's Host names the forwarded port.
    forwarded = probes.http_get(stack.url + "/go", headers={"Host": "localhost:8001"})
    assert forwarded.header("location") == "http://localhost:8001/"


@pytest.mark.parametrize(
    "path",
    [
        "/static../app.py",
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e/app.py",
        "/static/%2e%2e%2fapp.py",
    ],
)
def test_alias_traversal_to_a_file_beside_the_static_dir_is_refused(stack: Project, path: str) -> None:
    resp = probes.http_get(stack.url + path)
    assert resp.status == 404  # neither the static folder nor the app has it
    assert b"Flask" not in resp.body and b"socketio" not in resp.body


def test_code_edit_is_served_without_a_manual_step(stack: Project) -> None:
    app_py = stack.root / "app.py"
    app_py.write_text(app_py.read_text().replace("Hello from devstack", "Edited greeting"))
    assert wait_for(lambda: b"Edited greeting" in probes.http_get(stack.url + "/health").body, timeout=20)


def test_second_code_edit_in_the_same_second_with_equal_size_is_served(project: Project) -> None:
    # gunicorn writes bytecode here whatever the caller's environment says ("" is off).
    project.write_config(app='worker = "gthread"\n[app.env]\nPYTHONDONTWRITEBYTECODE = ""')
    project.up_detached()
    app_py = project.root / "app.py"
    original = app_py.read_text()
    stamp = int(time.time())

    def save_and_serve(greeting: str) -> bool:
        app_py.write_text(original.replace("Hello from devstack", greeting))
        os.utime(app_py, (stamp, stamp))  # one mtime second for both saves, as a quick fix has
        return wait_for(lambda: greeting.encode() in probes.http_get(project.url + "/health").body, 20)

    assert save_and_serve("Greeting A")
    assert list((project.root / "__pycache__").glob("app.*.pyc"))  # the first save's bytecode
    assert save_and_serve("Greeting B")  # same size and second: the old .pyc would still pass


def test_import_error_then_fix_recovers_without_a_manual_step(stack: Project) -> None:
    app_py = stack.root / "app.py"
    good = app_py.read_text()
    app_py.write_text(good + "\nraise RuntimeError('broken on purpose')\n")

    def gunicorn_reported_boot_failure() -> bool:
        log = stack.state_dir / "logs" / "gunicorn.log"
        return log.exists() and "Worker failed to boot" in log.read_text(errors="replace")

    assert wait_for(gunicorn_reported_boot_failure, timeout=20)
    assert "broken on purpose" in (stack.state_dir / "logs" / "gunicorn.log").read_text()
    # nginx stays up meanwhile and answers 502 for the app.
    assert probes.http_get(stack.url + "/health").status == 502
    app_py.write_text(good.replace("Hello from devstack", "Fixed greeting"))

    def fixed() -> bool:
        try:
            return b"Fixed greeting" in probes.http_get(stack.url + "/health").body
        except OSError:
            return False

    assert wait_for(fixed, timeout=20)


def test_ctrl_c_leaves_no_child_process(project: Project, tmp_path: object) -> None:
    out = open(project.root / "up.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up"],
        cwd=project.root,
        env=cli_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: project.state().get("status") == "ready", timeout=30), (
            project.root / "up.out"
        ).read_text()
        children = psutil.Process(proc.pid).children(recursive=True)
        names = {c.name() for c in children}
        assert any("nginx" in n for n in names) and len(children) >= 4  # masters and workers
        gunicorn = psutil.Process(project.state()["processes"]["gunicorn"]["pid"])
        assert "--bind" not in gunicorn.cmdline()  # a first up: gated at the start (headstart.py)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"left behind: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    text = (project.root / "up.out").read_text()
    assert "ready in" in text
    assert "gunicorn" in text and "nginx.access" in text  # prefixed logs were streamed


def test_down_stops_everything_and_frees_the_ports(stack: Project) -> None:
    pids = stack.recorded_pids()
    assert stack.down().returncode == 0
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids
    )
    assert ports.can_bind("127.0.0.1", stack.public_port)
    assert ports.can_bind("127.0.0.1", stack.app_port)
