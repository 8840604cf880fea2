"""Issue #26 on real processes: TLS with a self-signed and a local-CA certificate made by openssl
here (real nginx, real gunicorn), the Socket.IO path taken by a single-page app's location, the
gunicorn a project declares, and workers that keep dying or outlive a reload."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.doctor import GOOD_PROXY, doctor, finding, gunicorn, nginx, render, statuses
from tests.support.stack import EXAMPLE, free_ports

pytestmark = pytest.mark.needs_nginx


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("issue26") / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    return root


@pytest.fixture(scope="module")
def app_port(app_dir: Path) -> Iterator[int]:
    port = free_ports(1)[0]
    with gunicorn(app_dir, port, "-k", "gthread", "-w", "1", "--threads", "8", log=app_dir.parent / "g.log"):
        yield port


def _ext(url: str, conf: Path, static: Path, *extra: str) -> list[str]:
    return ["--url", url, "--nginx-conf", str(conf), "--static-dir", str(static), *extra]


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "self.pem", folder / "self-key.pem"
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
        *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
    )
    return cert, key


def _local_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A local CA, as mkcert makes one, and a certificate for 127.0.0.1 it signed."""
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, csr, ext = folder / "leaf.pem", folder / "leaf-key.pem", folder / "leaf.csr", folder / "ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", "/O=dev CA/CN=dev CA", "-keyout", str(ca_key), "-out", str(ca)),
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    _openssl(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial"),
        *("-days", "2", "-extfile", str(ext), "-out", str(cert)),
    )
    return cert, key, ca


def _tls_conf(tmp: Path, port: int, app_port: int, static: Path, cert: Path, key: Path) -> str:
    # Behind TLS the app needs the scheme too (socketio.host-port): a correct https set-up.
    return (
        render(tmp, port, app_port, static)
        .replace(
            f"listen 127.0.0.1:{port};",
            f"listen 127.0.0.1:{port} ssl;\n        ssl_certificate {cert};\n"
            f"        ssl_certificate_key {key};",
        )
        .replace(
            "proxy_set_header Host $http_host;",
            "proxy_set_header Host $http_host;\n            proxy_set_header X-Forwarded-Proto $scheme;",
        )
    )


TLS_PROBES = ("net.public-url", "net.tls-trust", "socketio.upgrade", "socketio.host-port", "static.ladder")


def test_self_signed_certificate_is_one_finding_and_every_probe_still_runs(
    app_dir: Path, app_port: int, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    cert, key = _self_signed(tmp_path)
    with nginx(_tls_conf(tmp_path, port, app_port, static, cert, key), tmp_path / "n", port) as conf:
        url = f"https://127.0.0.1:{port}"
        code, report = doctor(*TLS_PROBES, *_ext(url, conf, static))
        _, insecure = doctor(*TLS_PROBES, *_ext(url, conf, static, "--insecure"))
    trust = finding(report, "net.tls-trust")
    assert trust["status"] == "error", trust
    assert "is self-signed (subject CN=127.0.0.1, expires " in trust["finding"], trust
    assert "every other probe ran over TLS without verification" in trust["finding"]
    assert "--insecure" in trust["fix"]
    # One finding: the rest ran, over TLS without verification, and passed.
    others = {k: v for k, v in statuses(report).items() if k != "net.tls-trust"}
    assert others == {k: "ok" for k in others}, report
    assert "over TLS without verification" in finding(report, "net.public-url")["finding"]
    assert "websocket upgrade works" in finding(report, "socketio.upgrade")["finding"]  # wss://
    assert report["target"]["tls_verify"] is False and code == 1
    # --insecure: the certificate is not judged; nothing else changes.
    assert finding(insecure, "net.tls-trust")["status"] == "na"
    assert insecure["exit_code"] == 0, insecure


def test_local_ca_certificate_names_the_issuer_and_cacert_trusts_it(
    app_dir: Path, app_port: int, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    cert, key, ca = _local_ca(tmp_path)
    with nginx(_tls_conf(tmp_path, port, app_port, static, cert, key), tmp_path / "n", port) as conf:
        url = f"https://127.0.0.1:{port}"
        _, report = doctor(*TLS_PROBES, *_ext(url, conf, static))
        code, trusted = doctor(*TLS_PROBES, *_ext(url, conf, static, "--cacert", str(ca)))
    trust = finding(report, "net.tls-trust")
    assert trust["status"] == "error", trust
    assert "signed by an issuer this system does not trust (O=dev CA, CN=dev CA)" in trust["finding"], trust
    assert "--cacert" in trust["fix"] and "unable to get local issuer certificate" in str(trust["evidence"])
    assert finding(report, "static.ladder")["status"] == "ok"  # the probes ran
    # The fix, applied: --cacert with the CA makes the certificate verify, and the probes verify it.
    assert finding(trusted, "net.tls-trust")["status"] == "ok", trusted
    assert "--cacert" in finding(trusted, "net.tls-trust")["finding"]
    assert trusted["target"]["tls_verify"] is True
    assert code == 0 and set(statuses(trusted).values()) == {"ok"}, trusted


SPA = """
        location / {
            alias SITE/;
            try_files $uri $uri/ /index.html;
        }
        location /api/ {
            proxy_pass http://app/;
        }"""


def _spa_site(tmp: Path, static: Path) -> Path:
    site = tmp / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text(
        '<!doctype html><script src="/static/js/socket.io.min.js"></script><div id="app"></div>\n'
    )
    os.chmod(tmp, 0o755)
    return site


def test_single_page_app_location_taking_socketio_is_named_and_its_fix_works(
    app_dir: Path, app_port: int, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    site = _spa_site(tmp_path, static)
    text = render(tmp_path, port, app_port, static, proxy=SPA.replace("SITE", str(site)))
    checks = ("socketio.route", "socketio.upgrade", "socketio.host-port")
    with nginx(text, tmp_path / "n", port) as conf:
        url = f"http://127.0.0.1:{port}"
        code, report = doctor(*checks, *_ext(url, conf, static))
    route = finding(report, "socketio.route")
    assert route["status"] == "error" and code == 1, route
    line = next(i for i, ln in enumerate(conf.read_text().splitlines(), 1) if "location / {" in ln)
    assert f"`location /` ({conf}:{line})" in route["finding"], route
    assert "try_files falls back to /index.html" in route["finding"]
    polling = next(e["text"] for e in route["evidence"] if e["text"].startswith("Engine.IO polling"))
    assert "HTTP 200 text/html" in polling and "(no open packet)" in polling, polling
    assert finding(report, "socketio.upgrade")["status"] == "na"  # one fault, one finding
    # The fix as its text says: its location block, added to the server.
    block = next(part for part in route["fix"].split("`") if part.startswith("location ^~ /socket.io/"))
    fixed = text.replace("        location /api/ {", f"        {block}\n        location /api/ {{")
    with nginx(fixed, tmp_path / "fixed", port) as conf:
        code, after = doctor(*checks, *_ext(url, conf, static))
    assert statuses(after) == dict.fromkeys(checks, "ok"), after
    assert code == 0


def test_a_return_location_covering_socketio_and_the_polling_handshake(
    app_dir: Path, app_port: int, tmp_path: Path
) -> None:
    """`location /socket.io { return 404; }` beside a good proxy: nginx picks the longer prefix."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    proxy = GOOD_PROXY + "\n        location /socket.io {\n            return 404;\n        }"
    with nginx(render(tmp_path, port, app_port, static, proxy=proxy), tmp_path / "n", port) as conf:
        _, report = doctor("socketio.route", *_ext(f"http://127.0.0.1:{port}", conf, static))
    route = finding(report, "socketio.route")
    assert route["status"] == "error", route
    assert "`location /socket.io`" in route["finding"] and "`return 404` answers it" in route["finding"]
    assert any("polling handshake -> HTTP 404" in e["text"] for e in route["evidence"]), route
    assert "location ^~ /socket.io/" in route["fix"]


def _project(root: Path) -> Path:
    """A project declaring gunicorn four ways, each with a fault for Socket.IO; nothing runs."""
    root.mkdir()
    (root / "app.py").write_text("from flask import Flask\nfrom flask_socketio import SocketIO\n")
    (root / "Procfile").write_text(
        "release: flask db upgrade\nweb: gunicorn --worker-class eventlet -w 1 app:app\n"
    )
    (root / "deploy").mkdir()
    (root / "deploy" / "app.service").write_text(
        "[Service]\nWorkingDirectory=/srv/app\n"
        "ExecStart=/srv/app/venv/bin/gunicorn --workers 3 -k gthread \\\n"
        "    --bind unix:/run/app.sock app:app\n"
    )
    (root / "docker-compose.yml").write_text(
        "services:\n  web:\n    build: .\n    command: gunicorn -b 0.0.0.0:8000 app:app\n"
    )
    (root / "gunicorn.conf.py").write_text('bind = "0.0.0.0:8000"\nworkers = 2\n')
    # The app's interpreter, as `up` finds it (.venv/: this test run's venv, linked): its
    # gunicorn's version is the one judged.
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return root


def test_declared_gunicorns_are_read_and_named_even_when_nothing_runs(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    code, report = doctor("gunicorn.declared", "--url", url, "--project", str(root))
    check = finding(report, "gunicorn.declared")
    assert check["status"] == "error" and code == 1, check
    text = check["finding"]
    assert "Procfile:2: the eventlet worker, gone in gunicorn 26" in text, text
    assert "deploy/app.service:3: 3 workers for Socket.IO without a message queue" in text, text
    assert "docker-compose.yml:4: the sync worker (the default: no -k)" in text, text
    assert "gunicorn.conf.py:2: 2 workers" in text, text  # what the compose command reads
    assert any(".venv/bin/python" in e["text"] for e in check["evidence"]), check["evidence"]
    assert any(e.get("where") == "app.py:2" for e in check["evidence"])  # the Socket.IO import
    # The fix's edits, done as written, leave nothing to report.
    import re

    for name, line, old, new in re.findall(r"([\w./-]+):(\d+): `([^`]*)` -> `([^`]*)`", check["fix"]):
        path = root / name
        lines = path.read_text().splitlines()
        assert old in lines[int(line) - 1], (name, line, old)
        lines[int(line) - 1] = lines[int(line) - 1].replace(old, new, 1)
        path.write_text("\n".join(lines) + "\n")
    code, after = doctor("gunicorn.declared", "--url", url, "--project", str(root))
    assert finding(after, "gunicorn.declared")["status"] == "ok", after
    assert code == 0
    assert "gthread" in (root / "Procfile").read_text()


def test_a_project_without_socketio_or_declarations(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    _, report = doctor("gunicorn.declared", "--url", url, "--project", str(root))
    assert finding(report, "gunicorn.declared")["status"] == "na"
    (root / "Procfile").write_text("web: gunicorn -w 4 app:app\n")
    (root / "app.py").write_text("from flask import Flask\n")
    _, report = doctor("gunicorn.declared", "--url", url, "--project", str(root))
    assert finding(report, "gunicorn.declared")["status"] == "ok", report  # no Socket.IO: -w 4 is fine


CRASHY = """
import os
import threading

from app import app  # noqa: F401

threading.Timer(0.3, os._exit, (1,)).start()  # every worker dies 0.3 s after it booted
"""


def test_workers_that_keep_dying_are_seen_in_two_looks(app_dir: Path, tmp_path: Path) -> None:
    (app_dir / "crashy.py").write_text(CRASHY)
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "crashy.log"
    with gunicorn(app_dir, port, "-k", "gthread", "-w", "2", wsgi="crashy:app", log=log) as g:
        time.sleep(1.0)
        code, report = doctor("procs.crashing", "--url", url, "--app-url", url, "--gunicorn-log", str(log))
        master = g.popen.pid
    check = finding(report, "procs.crashing")
    assert check["status"] == "error" and code == 1, check
    assert f"gunicorn master pid {master}: its workers keep dying" in check["finding"], check
    assert any("exited with code 1" in e["text"] or "Booting worker" in e["text"] for e in check["evidence"])
    # A healthy gunicorn keeps its workers between the two looks.
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    with gunicorn(app_dir, port, "-k", "gthread", "-w", "2", log=tmp_path / "ok.log"):
        _, healthy = doctor("procs.crashing", "--url", url, "--app-url", url)
    assert finding(healthy, "procs.crashing")["status"] == "ok", healthy


def test_an_old_worker_outliving_a_reload_with_several_workers(app_dir: Path, tmp_path: Path) -> None:
    """-w 2, HUPed while a websocket is open: three alive; the old one is named with its pid."""
    import psutil
    import socketio

    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    with gunicorn(app_dir, port, "-k", "gthread", "-w", "2", "--threads", "4", log=tmp_path / "g.log") as g:
        master = psutil.Process(g.popen.pid)
        client = socketio.Client(reconnection=False)
        client.connect(url, transports=["websocket"], wait_timeout=10)
        try:
            before = {c.pid for c in master.children()}
            master.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while len(master.children()) != 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(master.children()) == 3
            kept = before & {c.pid for c in master.children()}
            _, report = doctor("gunicorn.workers", "--url", url, "--app-url", url)
        finally:
            client.disconnect()
    check = finding(report, "gunicorn.workers")
    assert check["status"] == "error", check
    assert "2 workers" in check["finding"] and "old worker(s) from before a reload" in check["finding"]
    assert f"pid {kept.pop()}" in check["finding"], check
