"""Probes: one implementation of "does it work", used by readiness (up), the watcher and doctor.

http.client and wsproto (pure Python, a dependency of devstack), so the same code runs inside a VM
guest.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

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


def tls_context(insecure: bool, cafile: str | None = None) -> ssl.SSLContext:
    """Verification on by default; --insecure accepts the self-signed certificates of local dev;
    cafile (doctor --cacert) adds a local CA (mkcert's) to the system's."""
    ctx = ssl.create_default_context()
    if cafile:
        ctx.load_verify_locations(cafile)
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


def _connection(
    url: str, timeout: float, insecure: bool, cafile: str | None = None
) -> http.client.HTTPConnection:
    if is_unix(url):
        return _UnixHTTPConnection(unix_target(url)[0], timeout)
    host, port, _ = split_url(url)
    if urllib.parse.urlsplit(url).scheme == "https":
        context = tls_context(insecure, cafile)
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


@dataclass
class Certificate:
    """What an https endpoint presents, and whether this system (plus cafile) trusts it."""

    verified: bool
    reason: str  # why verification failed ("self-signed certificate", ...), "" when it passed
    code: int  # OpenSSL's verify code (18 self-signed, 19 self-signed in chain, 20 unknown issuer)
    subject: str
    issuer: str
    not_after: str  # as OpenSSL prints it: "Dec  9 01:40:00 2026 GMT"

    @property
    def self_signed(self) -> bool:
        return self.code == 18 or (bool(self.subject) and self.subject == self.issuer)


def _names(field: object) -> str:
    """A decoded certificate's subject/issuer ((('commonName', 'x'),), ...) as CN=x, O=y."""
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}
    parts = []
    for rdn in field if isinstance(field, tuple) else ():
        for key, value in rdn:
            parts.append(f"{short.get(key, key)}={value}")
    return ", ".join(parts)


def _decode(der: bytes) -> dict[str, object]:
    """The certificate's fields, decoded by the ssl module's own decoder (no third-party code)."""
    import tempfile

    decode = getattr(ssl._ssl, "_test_decode_cert", None)  # type: ignore[attr-defined]
    if decode is None or not der:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:
        handle.write(ssl.DER_cert_to_PEM_cert(der))
        handle.flush()
        try:
            decoded: dict[str, object] = decode(handle.name)
        except (ssl.SSLError, OSError, ValueError):
            return {}
    return decoded


def _peer_der(host: str, port: int, timeout: float, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert(binary_form=True) or b""


def certificate(url: str, timeout: float = 5.0, cafile: str | None = None) -> Certificate:
    """Verify url's certificate as a browser would (system CAs + cafile, hostname); whatever the
    verdict, read what it presents. Raises OSError when nothing speaks TLS there."""
    host, port, _ = split_url(url)
    reason, code = "", 0
    try:
        der = _peer_der(host, port, timeout, tls_context(False, cafile))
    except ssl.SSLCertVerificationError as exc:
        reason, code = str(exc.verify_message or exc.reason), int(exc.verify_code or 0)
        der = _peer_der(host, port, timeout, tls_context(True))
    fields = _decode(der)
    subject, issuer = _names(fields.get("subject")), _names(fields.get("issuer"))
    return Certificate(not reason, reason, code, subject, issuer, str(fields.get("notAfter", "")))


def open_stream(url: str, timeout: float, insecure: bool = False, cafile: str | None = None) -> socket.socket:
    """A connected socket for url: TCP, TLS (https/wss) or a unix socket."""
    if is_unix(url):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(unix_target(url)[0])
        return sock
    host, port, _ = split_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    if urllib.parse.urlsplit(url).scheme in ("https", "wss"):
        return tls_context(insecure, cafile).wrap_socket(sock, server_hostname=host)
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
    cafile: str | None = None,
    body: bytes | None = None,
) -> Response:
    """One request, no redirects followed, no caching. Raises OSError on connection failure
    (a failed certificate verification is an ssl.SSLError, an OSError too)."""
    host, port, path = split_url(url)
    started = time.perf_counter()
    conn = _connection(url, timeout, insecure, cafile)
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
    """A WebSocket client that can speak Engine.IO, on wsproto (sans-IO RFC 6455: the handshake,
    masking, framing): text messages, ping/pong, close."""

    def __init__(self, sock: socket.socket, conn: WSConnection, pending: list[Event] | None = None) -> None:
        self.sock = sock
        self.conn = conn
        self.pending = list(pending or [])

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
        cafile: str | None = None,
    ) -> tuple[WebSocket | None, int, bytes]:
        """Open the handshake. Returns (socket or None, HTTP status, raw response head).
        base_url (https://, http://unix:/path:) picks TLS or a unix socket instead of plain TCP."""
        if base_url is not None:
            sock = open_stream(base_url, timeout, insecure, cafile)
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        if sock.family != socket.AF_UNIX:
            # Small frames written back to back ("41", then the close frame) would otherwise wait
            # for the server's delayed ACK: measured, 42 ms on every probe instead of 0.4 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = WSConnection(ConnectionType.CLIENT)
        extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        sock.sendall(
            conn.send(
                Request(host=f"{host}:{port}" if port else "localhost", target=path, extra_headers=extra)
            )
        )
        data = b""
        while True:
            chunk = sock.recv(4096)
            data += chunk
            try:
                conn.receive_data(chunk or None)
                events = list(conn.events())
            except RemoteProtocolError:
                events = []
                chunk = b""  # not an HTTP answer wsproto can read: judged by its head below
            if events or not chunk or len(data) > 65536:
                break
        head = data.partition(b"\r\n\r\n")[0]
        if events and isinstance(events[0], AcceptConnection):
            return cls(sock, conn, events[1:]), 101, head
        sock.close()
        if events and isinstance(events[0], RejectConnection):
            return None, events[0].status_code, head
        try:
            return None, int(head.split(b" ", 2)[1]), head
        except (IndexError, ValueError):
            return None, 0, head

    def _events(self) -> list[Event]:
        while not self.pending:
            chunk = self.sock.recv(65536)
            self.conn.receive_data(chunk or None)
            self.pending = list(self.conn.events())
        events, self.pending = self.pending, []
        return events

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.conn.send(TextMessage(data=text)))

    def recv_text(self) -> str:
        parts: list[str] = []
        while True:
            events = self._events()
            for index, event in enumerate(events):
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        self.pending = events[index + 1 :] + self.pending
                        return "".join(parts)
                elif isinstance(event, Ping):
                    self.sock.sendall(self.conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise WebSocketError("the server closed the websocket")

    def close_handshake(self) -> bytes:
        """Close as a browser does: our close frame, the server's, then the end of the stream.
        Returns what the server sent after its close frame: nothing, from a server that is well
        (anything else, an error page written onto the upgraded connection, fails the probe). A
        server that does not close within a second is let be (b""): the connect ack already
        proved it speaks. (python-engineio < 4.6's AttributeError after every websocket under
        gthread shows only in gunicorn's log, not here: plan.build refuses those versions.)"""
        self.sock.settimeout(min(self.sock.gettimeout() or 1.0, 1.0))
        try:
            self.sock.sendall(self.conn.send(CloseConnection(code=1000)))
            received = b""
            closed = any(isinstance(e, CloseConnection) for e in self.pending)
            while not closed:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return b""
                received += chunk
                self.conn.receive_data(chunk)
                for event in self.conn.events():
                    if isinstance(event, CloseConnection):
                        if event.code == 1002:  # the bytes that followed are not WebSocket frames
                            return _after_close(received)
                        closed = True
            # wsproto ends at the server's close frame; anything after it is not WebSocket.
            rest = b""
            while len(rest) < 65536 and (chunk := self.sock.recv(65536)):
                rest += chunk
        except (TimeoutError, WebSocketError, LocalProtocolError):
            return b""
        return rest

    def close(self) -> None:
        try:
            if self.conn.state is ConnectionState.OPEN:
                self.sock.sendall(self.conn.send(CloseConnection(code=1000)))
        except (OSError, LocalProtocolError):
            pass
        self.sock.close()


def _after_close(received: bytes) -> bytes:
    """What a server wrote after its close frame, in the chunk that carried both: from its HTTP
    status line when it wrote one (the broken server's error page), else all of it."""
    start = received.find(b"HTTP/")
    return received[start:] if start >= 0 else received


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
    cafile: str | None = None,
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
            cafile,
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
    cafile: str | None = None,
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
            resp = http_get(url, timeout=timeout, insecure=insecure, cafile=cafile)
        except OSError as exc:
            rungs.append(Rung(name, url, "", None, f"no answer: {exc}"))
            continue
        sha = sha256_bytes(resp.body) if resp.status == 200 else ""
        rungs.append(Rung(name, url, sha, resp.status, f"HTTP {resp.status}", resp.headers))
    return Ladder(relpath, rungs)
