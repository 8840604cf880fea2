"""The server side of a WebSocket, on wsproto (sans-IO RFC 6455): the handshake, text messages
(JSON), ping/pong and close. wsproto does the framing and masking; this module only moves bytes
between it and a socket, and keeps a tab from sending an unbounded message."""

from __future__ import annotations

import socket
import threading

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

MAX_MESSAGE = 1 << 20  # a tab's report is a few hundred bytes: anything huge is not a tab


class Closed(OSError):
    pass


def refuse(sock: socket.socket, head: bytes, status: int, body: bytes) -> None:
    """Answer an upgrade request with an HTTP error instead (wsproto writes the response)."""
    conn = WSConnection(ConnectionType.SERVER)
    try:
        conn.receive_data(head)
        list(conn.events())
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        data = conn.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += conn.send(RejectData(data=body))
    except (LocalProtocolError, RemoteProtocolError):
        data = f"HTTP/1.1 {status} Refused\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    sock.sendall(data)


class Connection:
    """One accepted WebSocket. send() is thread-safe; recv() belongs to the connection's thread."""

    def __init__(self, sock: socket.socket, conn: WSConnection, pending: list[Event] | None = None) -> None:
        self.sock = sock
        self.conn = conn
        self._pending = list(pending or [])
        self._lock = threading.Lock()  # wsproto's state machine is not thread-safe

    @classmethod
    def accept(cls, sock: socket.socket, head: bytes) -> Connection:
        """head: the request as read so far (its head and whatever followed it). Raises Closed when
        it is not a valid WebSocket handshake (answered 400 by wsproto's rules)."""
        conn = WSConnection(ConnectionType.SERVER)
        try:
            conn.receive_data(head)
            events = list(conn.events())
        except RemoteProtocolError as exc:
            sock.sendall(conn.send(exc.event_hint) if exc.event_hint else b"")
            raise Closed(f"not a websocket handshake: {exc}") from None
        if not events or not isinstance(events[0], Request):
            raise Closed("not a websocket handshake")
        sock.sendall(conn.send(AcceptConnection()))
        return cls(sock, conn, events[1:])

    def _events(self) -> list[Event]:
        while not self._pending:
            chunk = self.sock.recv(65536)
            with self._lock:
                self.conn.receive_data(chunk or None)
                self._pending = list(self.conn.events())
        events, self._pending = self._pending, []
        return events

    def recv(self) -> str:
        """The next text message (fragments joined); answers pings; raises Closed at the end."""
        parts: list[str] = []
        size = 0
        while True:
            events = self._events()
            for index, event in enumerate(events):
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > MAX_MESSAGE:
                        self.close(1009)
                        raise Closed("a message too big for a tab")
                    if event.message_finished:
                        self._pending = events[index + 1 :] + self._pending
                        return "".join(parts)
                elif isinstance(event, Ping):
                    self._send(event.response())
                elif isinstance(event, CloseConnection):
                    # wsproto reports a protocol error (an unmasked client frame, bad UTF-8) as a
                    # close with that code: answer it and end.
                    self._reply_close(event)
                    raise Closed(f"closed by the tab ({event.code})")

    def send(self, text: str) -> None:
        self._send(TextMessage(data=text))

    def _send(self, event: Event) -> None:
        with self._lock:
            try:
                data = self.conn.send(event)
            except LocalProtocolError as exc:
                raise Closed(str(exc)) from None
            self.sock.sendall(data)

    def _reply_close(self, event: CloseConnection) -> None:
        try:
            self._send(event.response())
        except OSError:
            pass
        self._shutdown()

    def close(self, code: int = 1000) -> None:
        try:
            self._send(CloseConnection(code=code))
        except OSError:
            pass
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
