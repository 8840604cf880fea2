"""One fault, one finding, the right fix — on real broken setups (real nginx, real gunicorn):
each finding's fix is applied and doctor re-run, and the check passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.doctor import GOOD_PROXY, doctor, finding, gunicorn, nginx, render, statuses
from tests.support.stack import EXAMPLE, free_ports

pytestmark = pytest.mark.needs_nginx


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("causes") / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    return root


@pytest.fixture(scope="module")
def app_port(app_dir: Path) -> Iterator[int]:
    port = free_ports(1)[0]
    with gunicorn(app_dir, port, "-k", "gthread", "-w", "1", "--threads", "8", log=app_dir.parent / "g.log"):
        yield port


def _ext(url: str, conf: Path, static: Path, *extra: str) -> list[str]:
    return ["--url", url, "--nginx-conf", str(conf), "--static-dir", str(static), *extra]


def test_origin_fault_is_reported_once_by_the_host_check(
    app_dir: Path, app_port: int, tmp_path: Path
) -> None:
    """Upgrade headers all there, Host $host: the handshake upgrades without Origin and is
    refused with it — host-port says so, the upgrade check passes."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    proxy = GOOD_PROXY.replace("Host $http_host", "Host $host")
    with nginx(render(tmp_path, port, app_port, static, proxy=proxy), tmp_path / "a", port) as conf:
        _, report = doctor("socketio", *_ext(f"http://127.0.0.1:{port}", conf, static))
    states = statuses(report)
    assert states["socketio.host-port"] == "error", report
    assert states["socketio.upgrade"] == "ok", finding(report, "socketio.upgrade")
    assert "socketio.host-port says why" in finding(report, "socketio.upgrade")["finding"]
    assert "$http_host" in finding(report, "socketio.host-port")["fix"]
    # The fix, applied:
    with nginx(render(tmp_path, port, app_port, static), tmp_path / "b", port) as conf:
        _, report = doctor("socketio", *_ext(f"http://127.0.0.1:{port}", conf, static))
    assert statuses(report)["socketio.host-port"] == "ok"


def test_duplicated_host_header(app_dir: Path, app_port: int, tmp_path: Path) -> None:
    """Host set twice: gunicorn answers 400 to everything. One finding names it; the public
    URL does not pass on a 400; host-port does not prescribe $http_host (it is there)."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    proxy = GOOD_PROXY.replace(
        "proxy_set_header Host $http_host;",
        "proxy_set_header Host $http_host;\n            proxy_set_header Host $host;",
    )
    with nginx(render(tmp_path, port, app_port, static, proxy=proxy), tmp_path / "a", port) as conf:
        code, report = doctor(*_ext(f"http://127.0.0.1:{port}", conf, static))
    states = statuses(report)
    assert states["nginx.duplicate-header"] == "error", report
    assert "400" in str(finding(report, "nginx.duplicate-header")["evidence"])
    assert states["net.public-url"] == "error" and "400" in finding(report, "net.public-url")["finding"]
    assert states["socketio.host-port"] == "na"
    assert states["socketio.upgrade"] == "ok", finding(report, "socketio.upgrade")
    assert code == 1
    with nginx(render(tmp_path, port, app_port, static), tmp_path / "b", port) as conf:
        _, report = doctor(*_ext(f"http://127.0.0.1:{port}", conf, static))
    fixed = statuses(report)
    assert (fixed["nginx.duplicate-header"], fixed["net.public-url"]) == ("ok", "ok"), report


def _world_readable_copy(app_dir: Path) -> Path:
    """The static folder under a fresh /tmp folder (pytest's are 0700 for everyone but root)."""
    base = Path(tempfile.mkdtemp(prefix="doctor-perm-"))
    os.chmod(base, 0o755)
    shutil.copytree(app_dir / "static", base / "site" / "static")
    return base


def test_static_403_explained_from_log_and_permissions(app_dir: Path, app_port: int, tmp_path: Path) -> None:
    """nginx's workers run as nobody and one parent folder is 0700: the ladder says which
    folder, from the error log line and the permission walk; `chmod o+x` on it fixes it."""
    base = _world_readable_copy(app_dir)
    try:
        site, static = base / "site", base / "site" / "static"
        os.chmod(site, 0o700)
        port = free_ports(1)[0]
        text = render(tmp_path, port, app_port, static)
        text = (
            "\n".join(ln for ln in text.splitlines() if not ln.startswith("user "))
            + "\nuser nobody nogroup;\n"
        )
        with nginx(text, tmp_path / "a", port) as conf:
            args = _ext(f"http://127.0.0.1:{port}", conf, static)
            _, report = doctor("static.ladder", "static.nginx-permissions", *args)
            ladder = finding(report, "static.ladder")
            assert ladder["status"] == "error" and "permission denied" in ladder["finding"], ladder
            assert "HTTP 403" in ladder["finding"]
            assert any("Permission denied" in e["text"] for e in ladder["evidence"]), ladder  # the log line
            perm = finding(report, "static.nginx-permissions")
            assert perm["status"] == "error" and str(site) in perm["finding"], perm
            assert f"chmod o+x {site}" in perm["fix"], perm
            subprocess.run(["chmod", "o+x", str(site)], check=True)  # the fix, as written
            _, report = doctor("static.ladder", "static.nginx-permissions", *args)
        assert statuses(report) == {"static.ladder": "ok", "static.nginx-permissions": "ok"}, report
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_eventlet_on_gunicorn_26_plus_named_with_its_fix(app_dir: Path, tmp_path: Path) -> None:
    app_port, port = free_ports(2)
    log = tmp_path / "gunicorn.log"
    static = app_dir / "static"
    with gunicorn(app_dir, app_port, "-k", "eventlet", log=log, wait=False) as proc:
        proc.popen.wait(timeout=30)
    with nginx(render(tmp_path, port, app_port, static), tmp_path / "a", port) as conf:
        args = _ext(f"http://127.0.0.1:{port}", conf, static, "--gunicorn-log", str(log))
        _, report = doctor("gunicorn", *args)
        ev = finding(report, "gunicorn.eventlet")
        assert ev["status"] == "error" and "eventlet" in ev["finding"], ev
        assert "-k gthread" in ev["fix"] and "simple-websocket" in ev["fix"]
        assert "gunicorn.eventlet" in finding(report, "gunicorn.running")["finding"]
        with gunicorn(app_dir, app_port, "-k", "gthread", "-w", "1", "--threads", "16"):
            log.write_text("")  # a fresh start (gunicorn writes its own log elsewhere here)
            _, report = doctor("gunicorn", *args)
    fixed = statuses(report)
    assert (fixed["gunicorn.eventlet"], fixed["gunicorn.running"]) == ("ok", "ok"), report


def test_socketio_client_the_server_cannot_speak(app_dir: Path, app_port: int, tmp_path: Path) -> None:
    """The page loads a Socket.IO 2.x client (Engine.IO 3); python-socketio 5 refuses EIO=3."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    client = static / "js" / "socket.io.min.js"
    original = client.read_bytes()
    # Only the banner matters to the check; the server's refusal of EIO=3 is real.
    client.write_text("/*!\n * Socket.IO v2.3.0\n * (c) 2014-2019 Guillermo Rauch\n */\n")
    try:
        with nginx(render(tmp_path, port, app_port, static), tmp_path / "a", port) as conf:
            args = _ext(f"http://127.0.0.1:{port}", conf, static)
            _, report = doctor("socketio.client-version", *args)
            check = finding(report, "socketio.client-version")
            assert check["status"] == "error" and "2.3" in check["finding"], check
            assert "HTTP 400" in str(check["evidence"])
            client.write_bytes(original)  # the fix: the 4.x client
            _, report = doctor("socketio.client-version", *args)
        assert statuses(report) == {"socketio.client-version": "ok"}, report
    finally:
        client.write_bytes(original)


def test_tls_verification_on_by_default(app_dir: Path, app_port: int, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    text = render(tmp_path, port, app_port, static).replace(
        f"listen 127.0.0.1:{port};",
        f"listen 127.0.0.1:{port} ssl;\n        ssl_certificate {cert};\n        ssl_certificate_key {key};",
    )
    with nginx(text, tmp_path / "a", port) as conf:
        url = f"https://127.0.0.1:{port}"
        _, strict = doctor("net.public-url", "net.tls-trust", "socketio.upgrade", *_ext(url, conf, static))
        _, loose = doctor(
            "net.public-url", "socketio.upgrade", "static.ladder", *_ext(url, conf, static, "--insecure")
        )
    # Verified by default: the certificate is the finding (issue #26: the other probes still run).
    trust = finding(strict, "net.tls-trust")
    assert trust["status"] == "error" and "self-signed certificate" in str(trust["evidence"]), trust
    assert finding(strict, "net.public-url")["status"] == "ok"
    assert strict["target"]["tls_verify"] is False and loose["target"]["tls_verify"] is False
    assert statuses(loose) == {"net.public-url": "ok", "socketio.upgrade": "ok", "static.ladder": "ok"}, loose
    assert "websocket upgrade works" in finding(loose, "socketio.upgrade")["finding"]


def test_ignore_in_devstack_toml_and_fail_level(tmp_path: Path) -> None:
    """[doctor] ignore drops checks by ID or glob (said in the report); an unknown ID is a
    one-line error naming the file and the key; --fail-level warning fails on warnings."""
    from tests.support.stack import make_project

    project = make_project(tmp_path)
    project.write_config(extra='[doctor]\nignore = ["gunicorn.eventlet", "net.*"]')
    _, report = doctor(cwd=project.root)
    ids = {c["id"] for c in report["checks"]}
    assert "gunicorn.eventlet" not in ids and not any(i.startswith("net.") for i in ids), ids
    assert "gunicorn.eventlet" in report["ignored"] and "net.public-url" in report["ignored"]
    project.write_config(extra='[doctor]\nignore = ["no.such-check"]')
    bad = project.cli("doctor")
    assert bad.returncode == 1 and "doctor.ignore" in bad.stderr and "devstack.toml" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


def test_fail_level_warning(app_dir: Path, app_port: int, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    # nginx's defaults for static: warnings only
    plain = "\n        location /static/ {\n            alias STATIC/;\n        }"
    with nginx(render(tmp_path, port, app_port, static, static=plain), tmp_path / "a", port) as conf:
        args = _ext(f"http://127.0.0.1:{port}", conf, static)
        code, report = doctor("static.weak-validator", *args)
        assert statuses(report) == {"static.weak-validator": "warning"} and code == 0
        code, report = doctor("static.weak-validator", "--fail-level", "warning", *args)
        assert code == 1 and report["fail_level"] == "warning"
