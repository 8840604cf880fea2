"""Acceptance for `devstack up --vm` against real Vagrant (libvirt, QEMU): one VM, in order.

Everything is checked from the host through the forwarded port 127.0.0.1:<host_port>.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import psutil
import pytest

from devstack.project.config import load
from devstack.stack import probes
from devstack.system import ports
from devstack.vm import guest
from tests.vm.conftest import VMProject

pytestmark = pytest.mark.vm


def _url(project: VMProject, port: int = 8001) -> str:
    return f"http://127.0.0.1:{port}"


def test_up_vm_serves_through_the_forward(vm_project: VMProject) -> None:
    url = _url(vm_project)
    assert vm_project.state()["mode"] == "vm"
    home = probes.http_get(url + "/")
    assert home.status == 200
    assert b"Hello from devstack" in home.body
    css = vm_project.root / "static" / "css" / "app.css"
    served = probes.http_get(url + "/static/css/app.css")
    assert served.status == 200 and served.body == css.read_bytes()
    # The app's redirect carries the HOST-side port, not the guest's 5000.
    go = probes.http_get(url + "/go")
    assert go.status == 302
    assert go.header("location") == f"{url}/"


def test_socketio_echo_over_websocket(vm_project: VMProject) -> None:
    import socketio

    got: list[object] = []
    done = threading.Event()
    client = socketio.Client(reconnection=False)

    @client.on("echo")  # type: ignore[untyped-decorator]
    def _echo(data: object) -> None:
        got.append(data)
        done.set()

    client.connect(_url(vm_project), transports=["websocket"], wait_timeout=20)
    try:
        assert client.transport() == "websocket"
        client.emit("echo", {"text": "through the forward"})
        assert done.wait(20), "no echo"
        assert got == [{"text": "through the forward"}]
    finally:
        client.disconnect()


def _poll(check: object, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def test_host_css_edit_served_fresh_and_logged(vm_project: VMProject) -> None:
    css = vm_project.root / "static" / "css" / "app.css"
    marker = f"/* edited {time.time_ns()} */\n"
    with open(css, "a", encoding="utf-8") as handle:
        handle.write(marker)
    url = _url(vm_project) + "/static/css/app.css"
    seconds = _poll(lambda: probes.http_get(url).body == css.read_bytes(), 10)
    print(f"css edit fresh through the forward after {seconds * 1000:.0f} ms")
    log = vm_project.state_dir / "logs" / "watcher.log"
    # The same freshness watcher as local mode, fed by the sync, checking through the forward.
    _poll(lambda: log.exists() and "fresh  css/app.css" in log.read_text(), 10)
    assert "fetched from http://127.0.0.1:8001/static" in log.read_text()


def test_host_python_edit_served_as_new_code(vm_project: VMProject) -> None:
    app = vm_project.root / "app.py"
    app.write_text(app.read_text().replace("Hello from devstack", "Hello from the VM edit"))
    url = _url(vm_project) + "/health"

    def new_code() -> bool:
        try:
            return b"Hello from the VM edit" in probes.http_get(url, timeout=5).body
        except OSError:
            return False

    seconds = _poll(new_code, 60)
    print(f"python edit served as new code after {seconds:.1f} s")


def test_devstack_toml_edit_keeps_the_guest_config(vm_project: VMProject) -> None:
    """A synced devstack.toml edit is applied live in the guest, and the guest's derived
    settings (nginx on 0.0.0.0 for the forward, state outside the share) survive it."""
    toml = vm_project.config_path
    toml.write_text(toml.read_text().replace("threads = 16", "threads = 12"), encoding="utf-8")
    config = load(toml)

    def applied() -> bool:
        code, out, _ = guest.run_in_guest(config, "ps -eo args | grep -c '[-]-threads 12'")
        return code == 0 and out.strip() not in ("", "0")

    _poll(applied, 60)
    _poll(lambda: probes.http_get(_url(vm_project) + "/", timeout=5).status == 200, 60)
    _, out, _ = guest.run_in_guest(config, "ls /vagrant/.devstack 2>&1; ss -ltn | grep :5000")
    assert "0.0.0.0:5000" in out and "No such file" in out, out


def test_logs_on_the_host_show_guest_nginx_and_gunicorn(vm_project: VMProject) -> None:
    result = vm_project.cli("logs")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    # Whatever the line layout: the source name and the guest's own text on one line.
    assert any("nginx.access" in ln and "GET /static/css/app.css" in ln for ln in lines)
    assert any("gunicorn" in ln and "Booting worker" in ln for ln in lines)


def test_status_reports_vm_mode(vm_project: VMProject) -> None:
    result = vm_project.cli("status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"mode": "vm"' in result.stdout


def test_run_in_guest_for_doctor(vm_project: VMProject) -> None:
    config = load(vm_project.config_path)
    code, out, _ = guest.run_in_guest(config, "stat -f -c %T /vagrant")
    assert code == 0 and out.strip() in ("ext2/ext3", "ext4")
    code, out, _ = guest.run_in_guest(config, "date +%s")
    assert code == 0 and abs(int(out) - time.time()) < 30


def test_doctor_runs_the_guest_side_checks(vm_project: VMProject) -> None:
    result = vm_project.cli("doctor", "--json")
    report = json.loads(result.stdout)
    assert report["host"]["target"]["public_url"].endswith(":8001"), report["host"]["target"]
    guest_checks = {c["id"]: c for c in report["guest"]["checks"]}
    # What only the guest can see: the share's filesystem under sendfile, the reload engine on
    # that share, the clock as nginx dates files, and nginx + gunicorn as the guest runs them.
    for check_id in (
        "nginx.sendfile-shared-fs",
        "gunicorn.reload-shared-fs",
        "static.clock-skew",
        "static.ladder",
        "socketio.upgrade",
        "gunicorn.running",
    ):
        assert check_id in guest_checks, sorted(guest_checks)
        assert guest_checks[check_id]["status"] in ("ok", "na"), guest_checks[check_id]
    assert not any(c.startswith("net.") for c in guest_checks)
    host_checks = {c["id"] for c in report["host"]["checks"]}
    assert "net.lan-exposure" in host_checks and "static.ladder" in host_checks
    assert not any(c.startswith(("nginx.", "gunicorn.")) for c in host_checks)
    assert abs(report["guest_clock_skew_s"]) < 30
    bad = [
        (side, c["id"], c["status"], c["finding"])
        for side in ("host", "guest")
        for c in report[side]["checks"]
        if c["status"] in ("error", "warning")
    ]
    assert result.returncode == report["exit_code"] == 0, bad
    text = vm_project.cli("doctor")
    assert "inside the VM" in text.stdout and "clock: the guest is" in text.stdout


def test_changed_public_port_moves_the_forward(vm_project: VMProject) -> None:
    vm_project.stop_up()
    vm_project.set_host_port(8002)
    seconds = vm_project.up_vm()
    print(f"up --vm with a changed port (reload) took {seconds:.0f} s")
    assert probes.http_get(_url(vm_project, 8002) + "/").status == 200
    assert ports.can_bind("127.0.0.1", 8001), "the old forward still holds 8001"
    with pytest.raises(OSError):
        probes.http_get(_url(vm_project, 8001) + "/", timeout=3)


def test_taken_host_port_is_named_before_vagrant_runs(vm_project: VMProject) -> None:
    vm_project.stop_up()
    vm_project.set_host_port(17931)
    holder = subprocess.Popen(
        [
            "python3",
            "-c",
            "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',17931)); s.listen(); time.sleep(60)",
        ]
    )
    try:
        _poll(lambda: not ports.can_bind("127.0.0.1", 17931), 10)
        result = vm_project.cli("up", "--vm", timeout=120)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "17931" in result.stderr and f"pid {holder.pid}" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        holder.kill()
        holder.wait()
    vm_project.set_host_port(8002)


def test_down_destroy_leaves_nothing(vm_project: VMProject) -> None:
    domain = vm_project.state().get("extra", {}).get("vm", {}).get("domain", "")
    assert domain
    result = vm_project.cli("down", "--destroy", timeout=180)
    assert result.returncode == 0, result.stderr
    names = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert domain not in names
    left = [
        p.info
        for p in psutil.process_iter(["pid", "name", "cmdline"])
        if any(str(vm_project.root) in part or domain in part for part in (p.info["cmdline"] or []))
    ]
    assert not left, f"processes left: {left}"
    assert ports.can_bind("127.0.0.1", 8002)
