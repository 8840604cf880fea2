"""Real broken setups for doctor tests: hand-written nginx configs run by real nginx, real
gunicorn processes with chosen flags, a TCP port forward (what Vagrant puts in front of nginx),
and the doctor CLI itself with its JSON validated against the published schema."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import jsonschema

from devstack.system import ports
from tests.support.stack import REPO, cli_env, free_ports

SCHEMA = json.loads((REPO / "devstack/doctor/report.schema.json").read_text())


def nginx_bin() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found


def worker_user(path: Path) -> str:
    if os.geteuid() != 0:
        return ""
    st = path.stat()
    return f"user {pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name};"


GOOD_STATIC = """
        location /static/ {
            alias STATIC/;
            etag off;
            if_modified_since off;
            add_header Cache-Control "no-store" always;
            expires off;
        }"""

GOOD_PROXY = """
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }"""


def render(
    prefix: Path,
    listen: int,
    app_port: int,
    static_dir: Path,
    static: str = GOOD_STATIC,
    proxy: str = GOOD_PROXY,
    http_extra: str = "absolute_redirect off;\n    sendfile off;",
    listen_host: str = "127.0.0.1",
) -> str:
    body = f"""worker_processes 1;
{worker_user(static_dir)}
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    {http_extra}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream app {{
        server 127.0.0.1:{app_port};
    }}
    server {{
        listen {listen_host}:{listen};
        # Only the names it is reached by (doctor net.any-host): a rebinding Host gets no answer.
        if ($host !~ "^(127\\.0\\.0\\.1|localhost)$") {{ return 444; }}
{static}
{proxy}
    }}
}}
"""
    if not Path("/etc/nginx/mime.types").is_file():
        body = body.replace("    include /etc/nginx/mime.types;\n", "")
    return body.replace("STATIC", str(static_dir))


class Proc:
    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        self.popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if log:
            out.close()  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@contextmanager
def nginx(conf_text: str, base: Path, port: int) -> Iterator[Path]:
    """A real nginx on conf_text; yields the config path."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "tmp").mkdir(exist_ok=True)
    conf = base / "nginx.conf"
    conf.write_text(conf_text, encoding="utf-8")
    proc = Proc(
        [nginx_bin(), "-p", str(base), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
        base,
        log=base / "nginx.log",
    )
    try:
        assert ports.wait_port("127.0.0.1", port, 10), (base / "nginx.log").read_text()
        yield conf
    finally:
        proc.stop()


@contextmanager
def gunicorn(
    app_dir: Path,
    port: int,
    *args: str,
    wsgi: str = "app:app",
    env: dict[str, str] | None = None,
    bind_host: str = "127.0.0.1",
    log: Path | None = None,
    wait: bool = True,
) -> Iterator[Proc]:
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "GUNICORN_CMD_ARGS": "",
        "DEVSTACK_ASYNC_MODE": "threading",
        **(env or {}),
    }
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(app_dir),
        "-b",
        f"{bind_host}:{port}",
        *args,
        wsgi,
    ]
    proc = Proc(argv, app_dir, full_env, log=log)
    try:
        if wait:
            assert ports.wait_port("127.0.0.1", port, 30), (
                log.read_text() if log else "gunicorn did not listen"
            )
        yield proc
    finally:
        proc.stop()


class Forward:
    """A TCP port forward on loopback, like Vagrant's forwarded_port (host 8001 -> guest 5000)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_ports(1)[0]
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.stopping = True
        self.sock.close()
        self.thread.join(timeout=2)


def doctor(*args: str, cwd: Path | None = None, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    """Run `devstack doctor --json ARGS`; the report is validated against the schema."""
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "doctor", "--json", *args],
        cwd=cwd or REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert result.returncode == report["exit_code"], result.stderr
    return result.returncode, report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"]}


def finding(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == check_id)
