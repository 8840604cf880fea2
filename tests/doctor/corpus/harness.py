"""Runs one corpus case for real: the author's directives in a loopback nginx, examples/chat under
gunicorn with the author's flags, and `devstack doctor --json` on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.system import ports
from tests.support.doctor import Proc, doctor, nginx_bin
from tests.support.stack import EXAMPLE, free_ports

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
FINDING = ("error", "warning")  # what counts as a finding (info is advice, not counted)


@dataclass
class Case:
    name: str
    conf: str
    meta: dict[str, Any]

    @property
    def expect(self) -> dict[str, str]:
        return dict(self.meta.get("expect", {}))


def cases() -> list[Case]:
    found = []
    for toml in sorted(CASES.glob("*.toml")):
        meta = tomllib.loads(toml.read_text(encoding="utf-8"))
        found.append(Case(toml.stem, toml.with_suffix(".conf").read_text(encoding="utf-8"), meta))
    return found


@dataclass
class Site:
    base: Path
    app: Path
    static: Path
    root: Path
    conf: Path
    url: str
    values: dict[str, str] = field(default_factory=dict)
    ca: Path | None = None  # the local CA that signed the certificate (tls = "local-ca")
    doctor_args: list[str] = field(default_factory=list)  # what a fix added (--cacert, --insecure)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _local_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A local CA (as mkcert makes one) and a certificate for 127.0.0.1 it signed."""
    ca_key, ca = folder / "ca-key.pem", folder / "ca.pem"
    key, csr, cert = folder / "key.pem", folder / "req.csr", folder / "cert.pem"
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    for argv in (
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/O=local dev CA/CN=local dev CA",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
        ],
        [
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
        ],
        [
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            str(cert),
        ],
    ):
        subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)
    return cert, key, ca


# The built index.html of a single-page front end whose bundle opens Socket.IO (spa_index = true).
SPA_INDEX = """<!doctype html>
<html><head><link rel="stylesheet" href="/static/css/app.css"></head>
<body><div id="app"></div>
<script src="/static/js/socket.io.min.js"></script><script src="/static/js/app.js"></script>
</body></html>
"""


def render(case: Case, base: Path) -> Site:
    """The case's nginx.conf on free loopback ports, in a world-readable folder (nginx's workers
    run as nobody when the tests run as root)."""
    app = base / "app"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    root = base / "site"
    shutil.copytree(app / "static", root / "static")
    logs = base / "logs"
    logs.mkdir()
    listen, listen2, app_port = free_ports(3)
    values = {
        "@LISTEN2@": f"127.0.0.1:{listen2}",
        "@LISTEN@": f"127.0.0.1:{listen}",
        "@APPPORT@": str(app_port),
        "@APP@": f"127.0.0.1:{app_port}",
        "@SOCK@": str(base / "run" / "app.sock"),
        "@STATIC@": str(app / "static"),
        "@ROOT@": str(root),
        "@LOGS@": str(logs),
    }
    (base / "run").mkdir()
    ca = None
    if case.meta.get("tls") == "local-ca":
        cert, key, ca = _local_ca(base)
        values["@CERT@"], values["@KEY@"] = str(cert), str(key)
    elif "@CERT@" in case.conf:
        cert, key = _self_signed(base)
        values["@CERT@"], values["@KEY@"] = str(cert), str(key)
    if case.meta.get("spa_index"):
        (root / "index.html").write_text(SPA_INDEX, encoding="utf-8")
    for name, content in case.meta.get("files", {}).items():
        # The project's own files (Procfile, a systemd unit, docker-compose.yml, gunicorn.conf.py)
        for placeholder, value in values.items():
            content = content.replace(placeholder, value)
        (app / name).write_text(content, encoding="utf-8")
    text = case.conf
    main = "\n".join(case.meta.get("main", []))
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
        main = main.replace(placeholder, value)
    shutil.copy(HERE / "proxy_params", base / "proxy_params")
    mime = Path("/etc/nginx/mime.types")
    if mime.is_file():
        shutil.copy(mime, base / "mime.types")
    types = "" if "include mime.types" in text or not mime.is_file() else "    include mime.types;\n"
    temp = "".join(
        f"    {k}_temp_path {base}/tmp;\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = base / "nginx.conf"
    conf.write_text(
        f"{main}\nworker_processes 1;\npid {base}/nginx.pid;\nerror_log {logs}/error.log warn;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n{types}{temp}{text}\n}}\n",
        encoding="utf-8",
    )
    (base / "tmp").mkdir()
    scheme = "https" if case.meta.get("https") or case.meta.get("tls") else "http"
    return Site(base, app, app / "static", root, conf, f"{scheme}://127.0.0.1:{listen}", values, ca)


@contextmanager
def prepared(case: Case) -> Iterator[Site]:
    """The rendered case in its own world-readable folder under /tmp (pytest's tmp folders are
    0700, which nginx's nobody worker could not enter), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="doctor-corpus-"))
    os.chmod(base, 0o755)
    try:
        yield render(case, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running(case: Case) -> Iterator[Site]:
    with prepared(case) as site, launched(site, case, list(case.meta.get("gunicorn", []))):
        yield site


@contextmanager
def launched(site: Site, case: Case, gunicorn_args: list[str]) -> Iterator[None]:
    """gunicorn (author's flags) then nginx on site.conf; both stopped on exit."""
    base = site.base
    with ExitStack() as stack:
        sock = Path(site.values["@SOCK@"])
        sock.unlink(missing_ok=True)
        bind = f"unix:{sock}" if case.meta.get("bind_unix") else site.values["@APP@"]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "GUNICORN_CMD_ARGS": "",
            "DEVSTACK_ASYNC_MODE": "threading",
        }
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(site.app),
            "-b",
            bind,
            *gunicorn_args,
            "app:app",
        ]
        g = Proc(argv, site.app, env, log=base / "logs" / "gunicorn.log")
        stack.callback(g.stop)
        if case.meta.get("bind_unix"):
            assert _wait_file(sock), (base / "logs" / "gunicorn.log").read_text()
        else:
            port = int(site.values["@APPPORT@"])
            assert ports.wait_port("127.0.0.1", port, 30), (base / "logs" / "gunicorn.log").read_text()
        ngx = Proc(
            [nginx_bin(), "-p", str(base), "-c", str(site.conf), "-g", "daemon off;"],
            base,
            log=base / "logs" / "nginx.out",
        )
        stack.callback(ngx.stop)
        port = int(site.values["@LISTEN@"].rsplit(":", 1)[1])
        assert ports.wait_port("127.0.0.1", port, 10), (base / "logs" / "nginx.out").read_text() + (
            base / "logs" / "error.log"
        ).read_text()
        yield


def _wait_file(path: Path, timeout: float = 30) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def run_doctor(site: Site, case: Case) -> dict[str, Any]:
    args = ["--url", site.url, "--nginx-conf", str(site.conf), "--static-dir", str(site.static)]
    if case.meta.get("https"):
        args.append("--insecure")  # (tls = "...": the certificate's trust is what the case is about)
    if case.meta.get("files"):
        args += ["--project", str(site.app)]
    _, report = doctor(*args, *site.doctor_args)
    return report


def findings(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"] if c["status"] in FINDING}
