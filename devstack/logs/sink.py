"""The multiplexer: raw chunks from child pipes -> timestamped lines in files and on the terminal.

File format, one line per output line: `<UTC ISO time> <stream> <text>` where stream is
o (stdout), e (stderr) or d (devstack's own note about the process). `devstack logs` reads these.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

STREAM_CODES = {"stdout": b"o", "stderr": b"e", "devstack": b"d"}
# Stable colors: a source keeps its color across runs (chosen by name, not by start order).
PALETTE = (b"36", b"33", b"32", b"35", b"34", b"91", b"96", b"93", b"92", b"95")
NAMED_COLORS = {"gunicorn": b"36", "nginx.access": b"32", "nginx.error": b"33",
                "watcher": b"35", "devstack": b"1"}


class Sink(Protocol):
    def feed(self, source: str, stream: str, data: bytes) -> None: ...
    def end(self, source: str, stream: str) -> None: ...
    def note(self, source: str, message: str) -> None: ...
    def close(self) -> None: ...


def color_for(source: str) -> bytes:
    if source in NAMED_COLORS:
        return NAMED_COLORS[source]
    return PALETTE[sum(source.encode()) % len(PALETTE)]


class LogMux:
    """Thread-safe: every reader thread calls feed(); one lock keeps lines whole."""

    def __init__(self, log_dir: Path | None, terminal: BinaryIO | None = None,
                 color: bool = False, width: int = 12, prefix: bool = True,
                 max_bytes: int = 10 * 1024 * 1024, backups: int = 3) -> None:
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.backups = backups
        self._sizes: dict[str, int] = {}
        self._held: list[bytes] | None = None
        self.terminal = terminal
        self.color = color
        self.width = width
        self.prefix = prefix
        self._lock = threading.Lock()
        self._partial: dict[tuple[str, str], bytes] = {}
        self._files: dict[str, BinaryIO] = {}
        self._warned = False
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    # -- input ---------------------------------------------------------------------------------
    def feed(self, source: str, stream: str, data: bytes) -> None:
        with self._lock:
            key = (source, stream)
            buffered = self._partial.pop(key, b"") + data
            head, sep, tail = buffered.rpartition(b"\n")
            if tail:
                self._partial[key] = tail
            if sep:
                self._emit(source, stream, head.split(b"\n"))

    def end(self, source: str, stream: str) -> None:
        with self._lock:
            rest = self._partial.pop((source, stream), b"")
            if rest:
                self._emit(source, stream, [rest])

    def note(self, source: str, message: str) -> None:
        with self._lock:
            self._emit(source, "devstack", [message.encode("utf-8", "replace")])

    # -- output --------------------------------------------------------------------------------
    def _emit(self, source: str, stream: str, lines: list[bytes]) -> None:
        now = time.time()
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        self._write_file(source, stream, lines, now)
        if self.terminal is not None:
            self._write_terminal(source, stream, lines, now)

    def _write_file(self, source: str, stream: str, lines: list[bytes], now: float) -> None:
        if self.log_dir is None:
            return
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        head = stamp + b" " + STREAM_CODES[stream] + b" "
        try:
            handle = self._files.get(source)
            if handle is None:
                path = self.log_dir / f"{source}.log"
                handle = open(path, "ab", buffering=0)  # noqa: SIM115 (kept open for the run)
                os.chmod(path, 0o644)
                self._files[source] = handle
                self._sizes[source] = path.stat().st_size
            data = head + (b"\n" + head).join(lines) + b"\n"
            handle.write(data)
            self._sizes[source] = self._sizes.get(source, 0) + len(data)
            if self._sizes[source] >= self.max_bytes:
                self._rotate(source)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                warning = (f"devstack: cannot write logs to {self.log_dir} ({exc.strerror}); "
                           "the live view goes on\n").encode()
                if self.terminal is not None:
                    self.terminal.write(warning)
                else:
                    sys.stderr.buffer.write(warning)

    def _rotate(self, source: str) -> None:
        """<name>.log -> <name>.log.1 -> ... -> <name>.log.<backups>; the oldest is dropped."""
        assert self.log_dir is not None
        self._files.pop(source).close()
        self._sizes[source] = 0
        base = self.log_dir / f"{source}.log"
        if self.backups == 0:
            base.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            older = base.with_name(f"{base.name}.{index}")
            if older.exists():
                os.replace(older, base.with_name(f"{base.name}.{index + 1}"))
        os.replace(base, base.with_name(f"{base.name}.1"))

    def hold(self) -> None:
        """Keep terminal lines back (files still get them) until release(): a spinner is up."""
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
            if held and self.terminal is not None:
                try:
                    self.terminal.write(b"".join(held))
                    self.terminal.flush()
                except (OSError, ValueError):
                    self.terminal = None

    def _write_terminal(self, source: str, stream: str, lines: list[bytes], now: float) -> None:
        assert self.terminal is not None
        if self.prefix:
            clock = time.strftime("%H:%M:%S", time.localtime(now)).encode()
            name = source.encode().ljust(self.width)
            marker = b"!" if stream == "stderr" else (b"*" if stream == "devstack" else b"|")
            if self.color:
                head = clock + b" \x1b[" + color_for(source) + b"m" + name + b" " + marker + b"\x1b[0m "
            else:
                head = clock + b" " + name + b" " + marker + b" "
            body = head + (b"\n" + head).join(lines) + b"\n"
        else:
            body = b"\n".join(lines) + b"\n"
        if self._held is not None:
            self._held.append(body)
            return
        try:
            self.terminal.write(body)
            self.terminal.flush()
        except (OSError, ValueError):
            self.terminal = None  # the terminal went away (closed pty): keep logging to files

    def close(self) -> None:
        with self._lock:
            for (source, stream), rest in list(self._partial.items()):
                if rest:
                    self._emit(source, stream, [rest])
            self._partial.clear()
            for handle in self._files.values():
                handle.close()
            self._files.clear()
