"""The server side of RFC 6455, as small as the live-reload protocol needs: text frames (JSON),
ping/pong, close. Client frames are masked, the server's are not."""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 1 << 20  # a tab's report is a few hundred bytes: anything huge is not a tab


class Closed(OSError):
    pass


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    head = bytearray([0x80 | opcode])
    length = len(payload)
    if length < 126:
        head.append(length)
    elif length < 65536:
        head.append(126)
        head += struct.pack("!H", length)
    else:
        head.append(127)
        head += struct.pack("!Q", length)
    return bytes(head) + payload


def unmask(mask: bytes, payload: bytes) -> bytes:
    if not payload:
        return payload
    # XOR with the mask repeated: one big-int operation instead of a Python loop per byte.
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return value.to_bytes(len(payload), "big")


class Connection:
    """One accepted WebSocket. send() is thread-safe; recv() belongs to the connection's thread."""

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self.buffer = leftover
        self._send_lock = threading.Lock()

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed("the tab went away")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def recv(self) -> str:
        """The next text message (fragments joined); answers pings; raises Closed at the end."""
        parts: list[bytes] = []
        while True:
            first, second = self._read(2)
            opcode, fin = first & 0x0F, bool(first & 0x80)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            if length > MAX_MESSAGE or not second & 0x80:  # too big, or an unmasked client frame
                self.close(1009 if length > MAX_MESSAGE else 1002)
                raise Closed("protocol error")
            payload = unmask(self._read(4), self._read(length))
            if opcode == 0x8:
                self.close()
                raise Closed("closed by the tab")
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8", "replace")

    def send(self, text: str) -> None:
        self._send(0x1, text.encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(frame(opcode, payload))

    def close(self, code: int = 1000) -> None:
        try:
            self._send(0x8, struct.pack("!H", code))
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
