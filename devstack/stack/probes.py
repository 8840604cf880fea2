"""Probes: one implementation of "does it work", used by readiness (up), the watcher and doctor.

Stdlib only (http.client, a minimal WebSocket client), so the same code runs inside a VM guest.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.stack import rootstatic


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    elapsed: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def split_url(url: str) -> tuple[str, int, str]:
    if is_unix(url):
        sock, path = unix_target(url)
        return sock, 0, path
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


# A unix socket URL is written the way nginx's proxy_pass does: http://unix:/run/app.sock:/path
UNIX_PREFIX = "http://unix:"


def is_unix(url: str) -> bool:
    return url.startswith(UNIX_PREFIX)


def unix_target(url: str) -> tuple[str, str]:
    """http://unix:/run/app.sock:/path -> ("/run/app.sock", "/path")."""
    rest = url[len(UNIX_PREFIX) :]
    sock, sep, path = rest.partition(":")
    return sock, (path or "/") if sep else "/"


def unix_url(socket_path: str) -> str:
    return f"{UNIX_PREFIX}{socket_path}:"


def tls_context(insecure: bool) -> ssl.SSLContext:
    """Verification on by default; --insecure accepts the self-signed certificates of local dev."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def _connection(url: str, timeout: float, insecure: bool) -> http.client.HTTPConnection:
    if is_unix(url):
        return _UnixHTTPConnection(unix_target(url)[0], timeout)
    host, port, _ = split_url(url)
    if urllib.parse.urlsplit(url).scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls_context(insecure))
    return http.client.HTTPConnection(host, port, timeout=timeout)


def open_stream(url: str, timeout: float, insecure: bool = False) -> socket.socket:
    """A connected socket for url: TCP, TLS (https/wss) or a unix socket."""
    if is_unix(url):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(unix_target(url)[0])
        return sock
    host, port, _ = split_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    if urllib.parse.urlsplit(url).scheme in ("https", "wss"):
        return tls_context(insecure).wrap_socket(sock, server_hostname=host)
    return sock


USER_AGENT = "devstack-probe"


def app_answered(status: int) -> bool:
    """The app itself answered GET /: the stack is ready. An API with no page at / answers 404 and
    is ready too; nginx's 502/504 (and a 503) mean no app behind it, and a 400 to a plain GET is
    a proxy header fault (doctor's nginx.duplicate-header)."""
    return status not in (400, 502, 503, 504)


def why_ready(status: int) -> str:
    """What the readiness step adds to an answer that is not 200."""
    return " — the app answers; it has no page at /" if status == 404 else ""


def http_get(
    url: str,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    insecure: bool = False,
    body: bytes | None = None,
) -> Response:
    """One request, no redirects followed, no caching. Raises OSError on connection failure
    (a failed certificate verification is an ssl.SSLError, an OSError too)."""
    host, port, path = split_url(url)
    started = time.perf_counter()
    conn = _connection(url, timeout, insecure)
    try:
        # Named, so the probes are told apart from the browser in nginx's access log.
        conn.request(method, path, body=body, headers={"User-Agent": USER_AGENT, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        merged: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return Response(resp.status, merged, body, time.perf_counter() - started)
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer from {host}:{port}: {exc}") from exc
    finally:
        conn.close()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def static_url_for(base_url: str, static_prefix: str, relpath: str) -> str:
    # The name's bytes as on disk: a name that is not UTF-8 (surrogate escapes) is quoted byte
    # for byte, which is what nginx maps back to the file.
    quoted = urllib.parse.quote(os.fsencode(relpath.replace(os.sep, "/")))
    return base_url.rstrip("/") + static_prefix + quoted


def sample_static_file(static_dir: Path) -> Path | None:
    """A small, stable file to prove static serving with: the first regular file by name."""
    for folder, dirs, files in os.walk(static_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            candidate = Path(folder) / name
            # Never a file static at the site root keeps from disk (the app's code and config).
            if rootstatic.kept_from_disk(name):
                continue
            if candidate.is_file() and not candidate.is_symlink():
                return candidate
    return None


@dataclass
class Freshness:
    relpath: str
    fresh: bool
    disk_sha: str
    served_sha: str
    status: int
    elapsed: float
    headers: dict[str, str] = field(default_factory=dict)


def check_static(
    base_url: str, static_prefix: str, static_dir: Path, file: Path, timeout: float = 5.0
) -> Freshness:
    relpath = file.relative_to(static_dir).as_posix()
    disk = sha256_file(file)
    resp = http_get(static_url_for(base_url, static_prefix, relpath), timeout=timeout)
    served = sha256_bytes(resp.body) if resp.status == 200 else ""
    return Freshness(
        relpath, resp.status == 200 and served == disk, disk, served, resp.status, resp.elapsed, resp.headers
    )


# -- WebSocket / Socket.IO --------------------------------------------------------------------


class WebSocketError(OSError):
    pass


class WebSocket:
    """The smallest RFC 6455 client that can speak Engine.IO: text frames, ping/pong, close."""

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self.buffer = leftover

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        path: str,
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
        base_url: str | None = None,
        insecure: bool = False,
    ) -> tuple[WebSocket | None, int, bytes]:
        """Open the handshake. Returns (socket or None, HTTP status, raw response head).
        base_url (https://, http://unix:/path:) picks TLS or a unix socket instead of plain TCP."""
        if base_url is not None:
            sock = open_stream(base_url, timeout, insecure)
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        if sock.family != socket.AF_UNIX:
            # Small frames written back to back ("41", then the close frame) would otherwise wait
            # for the server's delayed ACK: measured, 42 ms on every probe instead of 0.4 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}" if port else "Host: localhost",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) > 65536:
                break
        head, _, rest = data.partition(b"\r\n\r\n")
        try:
            status = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            sock.close()
            return None, 0, head
        if status != 101:
            sock.close()
            return None, status, head
        expected = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        )
        if expected not in head:
            sock.close()
            return None, status, head
        return cls(sock, rest), status, head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        header = bytearray([0x81])
        length = len(payload)
        if length < 126:
            header.append(0x80 | length)
        elif length < 65536:
            header.append(0x80 | 126)
            header += struct.pack("!H", length)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketError("connection closed by the server")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def recv_text(self) -> str:
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x1:
                return payload.decode("utf-8", "replace")
            if opcode == 0x8:
                raise WebSocketError("the server closed the websocket")
            if opcode == 0x9:  # ping -> pong
                self.sock.sendall(bytes([0x8A, 0x80]) + os.urandom(4))

    def close_handshake(self) -> bytes:
        """Close as a browser does: our close frame, the server's, then the end of the stream.
        Returns what the server sent after its close frame: nothing, from a server that is well
        (anything else, an error page written onto the upgraded connection, fails the probe). A
        server that does not close within a second is let be (b""): the connect ack already
        proved it speaks. (python-engineio < 4.6's AttributeError after every websocket under
        gthread shows only in gunicorn's log, not here: plan.build refuses those versions.)"""
        self.sock.settimeout(min(self.sock.gettimeout() or 1.0, 1.0))
        mask = os.urandom(4)
        code = struct.pack("!H", 1000)
        self.sock.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(code)))
        try:
            while True:
                first, second = self._read(2)
                length = second & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self._read(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self._read(8))[0]
                self._read((4 if second & 0x80 else 0) + length)
                if first & 0x0F == 0x8:
                    break
            rest, self.buffer = self.buffer, b""
            while len(rest) < 65536 and (chunk := self.sock.recv(65536)):
                rest += chunk
        except (TimeoutError, WebSocketError):
            return b""
        return rest

    def close(self) -> None:
        try:
            self.sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        except OSError:
            pass
        self.sock.close()


@dataclass
class SocketIOResult:
    ok: bool
    status: int  # HTTP status of the upgrade request (101 when it worked)
    detail: str
    sid: str = ""
    elapsed: float = 0.0


def socketio_websocket(
    base_url: str,
    path: str = "/socket.io/",
    timeout: float = 5.0,
    origin: str | None = None,
    insecure: bool = False,
) -> SocketIOResult:
    """A Socket.IO client connect restricted to the websocket transport (as transports=['websocket'])."""
    host, port, _ = split_url(base_url)
    started = time.perf_counter()
    headers = {"Origin": origin} if origin else {}
    special = is_unix(base_url) or urllib.parse.urlsplit(base_url).scheme in ("https", "wss")
    try:
        ws, status, head = WebSocket.connect(
            host,
            port,
            f"{path}?EIO=4&transport=websocket",
            timeout,
            headers,
            base_url if special else None,
            insecure,
        )
    except OSError as exc:
        return SocketIOResult(False, 0, f"cannot connect: {exc}")
    if ws is None:
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        return SocketIOResult(False, status, f"no websocket upgrade: {first or 'empty answer'}")
    try:
        opened = ws.recv_text()
        if not opened.startswith("0"):
            return SocketIOResult(False, status, f"unexpected Engine.IO open packet {opened[:60]!r}")
        ws.send_text("40")
        while True:
            packet = ws.recv_text()
            if packet.startswith("40"):
                sid = json.loads(packet[2:] or "{}").get("sid", "")
                took = time.perf_counter() - started
                ws.send_text("41")  # the Socket.IO disconnect, then the websocket's closing handshake
                after = ws.close_handshake()
                if after:
                    first = after.split(b"\r\n", 1)[0].decode("latin-1", "replace")[:80]
                    return SocketIOResult(
                        False, status, f"connected, but the server failed once the websocket closed: {first}"
                    )
                return SocketIOResult(True, status, "connected over websocket, and closed cleanly", sid, took)
            if packet.startswith("44"):
                return SocketIOResult(False, status, f"connect refused: {packet[2:120]}")
            if packet == "2":
                ws.send_text("3")
    except (OSError, ValueError) as exc:
        return SocketIOResult(False, status, f"websocket failed: {exc}")
    finally:
        ws.close()


# -- the hash ladder: which layer serves something other than the disk ------------------------


@dataclass
class Rung:
    name: str  # disk | guest | nginx | app | public
    where: str  # a path or a URL
    sha: str  # "" when the layer answered without the file
    status: int | None = None  # HTTP status (None for disk and guest)
    detail: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    skipped: bool = False  # the layer does not exist here (no VM, app URL unknown)


@dataclass
class Ladder:
    relpath: str
    rungs: list[Rung]

    @property
    def disk(self) -> Rung:
        return self.rungs[0]

    @property
    def first_bad(self) -> Rung | None:
        """The first layer, walking from the disk outwards, whose bytes differ from the disk."""
        for rung in self.rungs[1:]:
            if rung.skipped or (rung.status is None and rung.name != "guest"):
                continue  # not there, or not reachable from here (a guest-only port)
            if rung.sha != self.disk.sha:
                return rung
        return None


def hash_ladder(
    static_dir: Path,
    static_prefix: str,
    file: Path,
    urls: list[tuple[str, str | None]],
    guest_sha: Callable[[Path], str | None] | None = None,
    timeout: float = 5.0,
    insecure: bool = False,
) -> Ladder:
    """disk -> guest (VM mode: guest_sha hashes the guest's copy) -> each (name, base URL) in order.

    A base URL of None marks a layer that does not exist for this stack (shown as skipped).
    """
    relpath = file.relative_to(static_dir).as_posix()
    rungs = [Rung("disk", str(file), sha256_file(file))]
    if guest_sha is not None:
        sha = guest_sha(file)
        rungs.append(Rung("guest", "guest copy", sha or "", detail="" if sha else "missing"))
    for name, base in urls:
        if base is None:
            rungs.append(Rung(name, "", "", skipped=True))
            continue
        url = static_url_for(base, static_prefix, relpath)
        try:
            resp = http_get(url, timeout=timeout, insecure=insecure)
        except OSError as exc:
            rungs.append(Rung(name, url, "", None, f"no answer: {exc}"))
            continue
        sha = sha256_bytes(resp.body) if resp.status == 200 else ""
        rungs.append(Rung(name, url, sha, resp.status, f"HTTP {resp.status}", resp.headers))
    return Ladder(relpath, rungs)
