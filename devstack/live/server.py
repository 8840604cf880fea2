"""The live-reload server: a service the supervisor starts and stops beside its watchers.

A thread in devstack, not a child process: the watchers that know about every edit live in this
process, so an edit reaches the tabs without another hop, and the server cannot outlive
devstack. It listens on two unix sockets in the state dir — never on a network port:
  live.sock    HTTP from nginx's `location /__devstack/`: live.js, and the tabs' WebSocket
  live.notify  datagrams: gunicorn's "worker-ready" (gunicorn_conf.py), nginx's CSP log lines
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.live import ws
from devstack.live.dashboard import ASSETS, Dashboard
from devstack.live.hub import Hub, Tab
from devstack.stack import livepaths as paths
from devstack.stack import probes

CLIENT_JS = Path(__file__).with_name("client.js")
MAX_HEAD = 16384
MAX_BODY = 65536
# Routes only devstack itself may use (doctor, the CLI): refused when the request came through nginx.
INTERNAL = ("/__devstack/tabs",)
INTERNAL_PREFIX = "/__devstack/internal/"
# The dashboard's own files: a fixed list, so no path from a request ever reaches the disk.
DASHBOARD_FILES = {
    "/__devstack/dash.js": ("dash.js", "application/javascript; charset=utf-8"),
    "/__devstack/dash.css": ("dash.css", "text/css; charset=utf-8"),
}
# The page runs only its own script, talks only to its own origin, and cannot be framed by
# another site (a framed dashboard could be clicked into restarting something).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ACTIONS = ("restart", "doctor", "clear-stale")
RESTART_AFTER = 0.25  # a restart asked through nginx waits until nginx has passed the answer on


def loopback_host(host: str) -> bool:
    """Host header names this machine: 127.x, ::1 or localhost (port stripped)."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_origin(headers: dict[str, str]) -> bool:
    """The WebSocket comes from a page of this very origin, on a loopback name (not a DNS-rebound
    site, not another origin's page)."""
    host = headers.get("host", "")
    origin = headers.get("origin", "")
    return bool(host) and loopback_host(host) and origin in (f"http://{host}", f"https://{host}")


class LiveServer:
    def __init__(
        self, state_dir: Path, hub: Hub, public_url: str, on_worker_ready: Callable[[], None]
    ) -> None:
        self.hub = hub
        self.public_url = public_url
        self.on_worker_ready = on_worker_ready
        # Told the datagram itself ("worker-ready PID NODE") on the notify thread, first.
        self.on_ready_text: Callable[[str], None] | None = None
        self.state_dir = state_dir
        self.stream_path = paths.stream_socket(state_dir)
        self.notify_path = paths.notify_socket(state_dir)
        self._stream: socket.socket | None = None
        self._notify: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._script = b""
        self.dashboard: Dashboard | None = None  # set by LiveReload.attach_dashboard

    # -- service protocol ----------------------------------------------------------------------------
    def start(self) -> None:
        self._script = CLIENT_JS.read_bytes()
        folder = self.stream_path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder != self.state_dir.resolve():
            self._own(folder)
        self._stream = self._bind(self.stream_path, socket.SOCK_STREAM)
        self._stream.listen(64)
        self._notify = self._bind(self.notify_path, socket.SOCK_DGRAM)
        for target, name in ((self._accept_loop, "live-accept"), (self._notify_loop, "live-notify")):
            threading.Thread(target=target, daemon=True, name=name).start()

    def _bind(self, path: Path, kind: int) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a devstack that was killed
        sock = socket.socket(socket.AF_UNIX, kind)
        sock.bind(str(path))
        os.chmod(path, 0o600)  # only this user: nothing in the state dir is world-writable
        self._own(path)
        return sock

    def _own(self, path: Path) -> None:
        """Started as root: nginx's workers run as the project's owner (plan._worker_user), so the
        sockets belong to that owner too."""
        if os.geteuid() == 0:
            st = self.state_dir.resolve().parent.stat()
            os.chown(path, st.st_uid, st.st_gid)

    def stop(self) -> None:
        self._stopping = True
        for sock in (self._stream, self._notify):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for path in (self.stream_path, self.notify_path):
            with contextlib.suppress(OSError):
                path.unlink()

    # -- datagrams ---------------------------------------------------------------------------------
    def _notify_loop(self) -> None:
        assert self._notify is not None
        while not self._stopping:
            try:
                data = self._notify.recv(65536)
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            if text.startswith("worker-ready"):
                if self.on_ready_text is not None:  # before the thread: the node is counted first
                    self.on_ready_text(text)
                threading.Thread(target=self.on_worker_ready, daemon=True, name="live-ready").start()
            elif "devstack_csp: " in text:  # nginx's syslog line: "<pri>date devstack_csp: /uri"
                self.hub.csp_blocked(text.split("devstack_csp: ", 1)[1].strip())

    # -- HTTP and WebSocket ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._stream is not None
        while not self._stopping:
            try:
                conn, _ = self._stream.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="live-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10.0)
            head, raw = _read_head(conn)
            if head is None:
                return
            method, target, headers = head
            path = urllib.parse.urlsplit(target).path
            internal = path in INTERNAL or path.startswith(INTERNAL_PREFIX)
            dash = self.dashboard
            if internal and "x-devstack-via" in headers:
                _respond(conn, 404, b"not found\n")
            elif dash is not None and _dashboard_path(path) and not loopback_host(headers.get("host", "")):
                # A DNS-rebound name (evil.example resolving to 127.0.0.1) would make the page, its
                # token and its logs readable by that site: the dashboard answers loopback names only.
                _respond(conn, 403, b"the dashboard answers only on a loopback name (127.0.0.1, localhost)\n")
            elif dash is not None and path == "/__devstack/" and method in ("GET", "HEAD"):
                page = (ASSETS / "index.html").read_bytes().replace(b"{{TOKEN}}", dash.token.encode())
                body = page if method == "GET" else b""
                _respond(conn, 200, body, "text/html; charset=utf-8", len(page), PAGE_HEADERS)
            elif dash is not None and path in DASHBOARD_FILES and method in ("GET", "HEAD"):
                name, kind = DASHBOARD_FILES[path]
                data = (ASSETS / name).read_bytes()
                _respond(conn, 200, data if method == "GET" else b"", kind, len(data))
            elif dash is not None and path.startswith(("/__devstack/api/", INTERNAL_PREFIX)):
                self._action(conn, dash, method, path, headers, raw, internal)
            elif path == "/__devstack/live.js" and method in ("GET", "HEAD"):
                body = self._script if method == "GET" else b""
                _respond(conn, 200, body, "application/javascript; charset=utf-8", len(self._script))
            elif path == "/__devstack/ws" and headers.get("upgrade", "").lower() == "websocket":
                self._websocket(conn, headers, raw)
            elif path in INTERNAL and method == "GET":
                answers = self.hub.probe_sheets()
                payload = json.dumps({"tabs": len(self.hub.tabs), "answers": answers}).encode()
                _respond(conn, 200, payload, "application/json")
            else:
                _respond(conn, 404, b"not found\n")
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _action(
        self,
        conn: socket.socket,
        dash: Dashboard,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        internal: bool,
    ) -> None:
        """A state-changing request. From the page (through nginx): POST, same origin on a loopback
        name, and the token the page was given. From the CLI: the unix socket, never via nginx."""
        action = path.rsplit("/", 1)[1]
        if method != "POST" or action not in ACTIONS:
            _json(conn, 405 if action in ACTIONS else 404, {"error": f"POST one of {', '.join(ACTIONS)}"})
            return
        if not internal:
            token = headers.get("x-devstack-token", "")
            if not same_origin(headers):
                _json(conn, 403, {"error": "refused: not a page of this stack's own origin"})
                return
            if not hmac.compare_digest(token.encode(), dash.token.encode()):
                _json(conn, 403, {"error": "refused: the dashboard's token is missing or wrong"})
                return
        try:
            body = json.loads(_read_body(conn, headers, raw) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            _json(conn, 400, {"error": "the body is not a JSON object"})
            return
        if action == "restart":
            name = str(body.get("name", ""))
            error = dash.restart_error(name)
            _json(conn, 400 if error else 202, {"error": error} if error else {"ok": True})
            if not error:  # answered first: a restart of nginx would cut the answer off
                dash.restart(name, after=0.0 if internal else RESTART_AFTER)
        elif action == "doctor":
            started = dash.run_doctor()
            _json(conn, 202, {"ok": True, "started": started})
        else:
            cleared = dash.clear_stale(str(body.get("file", "")))
            _json(conn, 200, {"ok": True, "cleared": cleared, "open": dash.open_stale()})

    def _websocket(self, conn: socket.socket, headers: dict[str, str], raw: bytes) -> None:
        if not same_origin(headers):
            ws.refuse(conn, raw, 403, b"live reload answers only pages of its own origin on this machine\n")
            return
        link = ws.Connection.accept(conn, raw)  # wsproto checks the handshake itself
        conn.settimeout(None)  # a tab stays open for hours
        tab: Tab | None = None
        watching: int | None = None  # a dashboard's subscription
        dash = self.dashboard

        def send(message: dict[str, Any]) -> None:
            link.send(json.dumps(message, separators=(",", ":")))

        try:
            while True:
                try:
                    message = json.loads(link.recv())
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if tab is None and watching is None:
                    if message.get("t") == "hello":
                        tab = self.hub.connect(send, message)
                    elif message.get("t") == "dash" and dash is not None:
                        # The dashboard is not a tab: edits never wait for it.
                        if hmac.compare_digest(str(message.get("token", "")).encode(), dash.token.encode()):
                            watching = dash.subscribe(send)
                        else:
                            link.close(1008)
                            return
                    continue
                if tab is not None:
                    self.hub.message(tab, message)
        except OSError:
            pass
        finally:
            if tab is not None:
                self.hub.disconnect(tab)
            if watching is not None and dash is not None:
                dash.unsubscribe(watching)

    # -- what the hub asks of the stack ------------------------------------------------------------
    def status_of(self, path: str) -> int:
        """The status the page answers with now, through nginx (0 when nothing answers)."""
        try:
            return probes.http_get(self.public_url.rstrip("/") + path, timeout=5.0).status
        except OSError:
            return 502


def _read_head(conn: socket.socket) -> tuple[tuple[str, str, dict[str, str]] | None, bytes]:
    """The request line and headers, and every byte read (the head and what followed it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > MAX_HEAD:
            return None, b""
        data += chunk
    lines = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    try:
        method, target, _ = lines[0].split(" ", 2)
    except ValueError:
        return None, b""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return (method, target, headers), data


def _dashboard_path(path: str) -> bool:
    """The dashboard's own routes (not live.js, which the app's pages load on any host)."""
    return path == "/__devstack/" or path in DASHBOARD_FILES or path.startswith("/__devstack/api/")


def _read_body(conn: socket.socket, headers: dict[str, str], raw: bytes) -> bytes:
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return b""
    if length <= 0 or length > MAX_BODY:
        return b""
    body = raw.partition(b"\r\n\r\n")[2]
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body[:length]


def _json(conn: socket.socket, status: int, payload: dict[str, Any]) -> None:
    _respond(conn, status, json.dumps(payload).encode() + b"\n", "application/json")


def _respond(
    conn: socket.socket,
    status: int,
    body: bytes,
    kind: str = "text/plain",
    length: int | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    reason = {
        200: "OK",
        202: "Accepted",
        400: "Bad Request",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
    }.get(status, "")
    more = "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
    conn.sendall(
        (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n{more}"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )
