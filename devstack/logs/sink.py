"""The multiplexer: raw chunks from child pipes -> timestamped lines in files and on the terminal.

Reader threads call feed() with whatever os.read returned. Each chunk is cut at its last newline
(the tail waits for the rest of its line), stamped once, and written as one block to the source's
file and to the terminal. Lines are never split into Python objects: see format.py.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from devstack.logs import format as fmt
from devstack.logs.screen import Screen
from devstack.logs.store import LogStore

# A "line" longer than this without a newline is written out in pieces rather than held in
# memory without bound (a child dumping a huge blob on one line).
MAX_LINE = 256 * 1024
# Re-exported for callers that predate format.py.
STREAM_CODES = fmt.STREAM_CODES
color_for = fmt.color_for


# Told of every block written: (source, stream, unix time, whole lines). Called under the lock,
# so it must only hand the block on (the dashboard queues it for its own thread).
Listener = Callable[[str, str, float, bytes], None]


class Sink(Protocol):
    def feed(self, source: str, stream: str, data: bytes) -> None: ...
    def end(self, source: str, stream: str) -> None: ...
    def note(self, source: str, message: str) -> None: ...
    def close(self) -> None: ...


# gunicorn writes every level to its error log (stderr): "[time] [pid] [INFO] Booting worker"
# is not an error. Such lines are filed as stdout; [WARNING], [ERROR] and tracebacks stay stderr.
_GUNICORN_QUIET = re.compile(rb"^\[[^\]]{1,64}\] \[\d+\] \[(?:INFO|DEBUG)\] ")


def by_level(block: bytes) -> list[tuple[str, bytes]]:
    """gunicorn's stderr block as runs of (stream, lines) by the level each line names."""
    runs: list[tuple[str, bytes]] = []
    for line in block.splitlines(keepends=True):
        stream = "stdout" if _GUNICORN_QUIET.match(line) else "stderr"
        if runs and runs[-1][0] == stream:
            runs[-1] = (stream, runs[-1][1] + line)
        else:
            runs.append((stream, line))
    return runs


class LogMux:
    """Thread-safe: every reader thread calls feed(); one lock keeps lines whole and in order."""

    def __init__(
        self,
        log_dir: Path | None,
        terminal: BinaryIO | None = None,
        color: bool = False,
        width: int = 12,
        prefix: bool = True,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 3,
    ) -> None:
        self.log_dir = log_dir
        self.terminal = terminal  # None: no live view (detached)
        self.screen = Screen(terminal) if terminal is not None else None
        self.color = color
        self.width = width
        self.prefix = prefix
        self._lock = threading.Lock()
        self._partial: dict[tuple[str, str], bytes] = {}
        self._held: list[bytes] | None = None
        self._clock = fmt.Clock()
        self._heads: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self.store = LogStore(log_dir, max_bytes, backups, self._warn) if log_dir is not None else None
        self.listeners: list[Listener] = []

    # -- input (any thread) --------------------------------------------------------------------
    def feed(self, source: str, stream: str, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            key = (source, stream)
            pending = self._partial.pop(key, None)
            if pending is not None:
                data = pending + data
            cut = data.rfind(b"\n") + 1
            if cut < len(data):
                if len(data) - cut > MAX_LINE:
                    data += b"\n"  # flush the over-long piece as a line of its own
                else:
                    self._partial[key] = data[cut:]
                    data = data[:cut]
            if data and stream == "stderr" and source == "gunicorn":
                for level_stream, run in by_level(data):
                    self._emit(source, level_stream, run)
            elif data:
                self._emit(source, stream, data)

    def end(self, source: str, stream: str) -> None:
        """The stream closed: a last line without its newline still counts."""
        with self._lock:
            rest = self._partial.pop((source, stream), None)
            if rest:
                self._emit(source, stream, rest + b"\n")

    def note(self, source: str, message: str) -> None:
        """devstack's own line about a source (started, exited, reloading)."""
        text = message.replace("\n", " ").encode("utf-8", "replace") + b"\n"
        with self._lock:
            self._emit(source, "devstack", text)

    # -- output (under the lock) ---------------------------------------------------------------
    def _emit(self, source: str, stream: str, block: bytes) -> None:
        """block: one or more whole lines, each ending in a newline."""
        now = time.time()
        block = fmt.normalize(block)
        if self.store is not None:
            head = self._clock.utc(now) + b" " + fmt.STREAM_CODES[stream] + b" "
            self.store.write(source, fmt.prefix_lines(block, head))
        for listener in self.listeners:
            listener(source, stream, now, block)
        if self.screen is not None:
            self._show(
                fmt.prefix_lines(fmt.for_screen(block, self.color), self._screen_head(source, stream, now))
                if self.prefix
                else fmt.for_screen(block, self.color)
            )

    def _screen_head(self, source: str, stream: str, now: float) -> bytes:
        clock = self._clock.local(now)
        cached = self._heads.get((source, stream))
        if cached is None or cached[0] != clock:
            cached = (clock, fmt.terminal_head(clock, source, stream, self.width, self.color))
            self._heads[(source, stream)] = cached
        return cached[1]

    def _show(self, body: bytes) -> None:
        if self._held is not None:
            self._held.append(body)
        elif self.screen is not None:
            self.screen.put(body)  # never blocks: a stuck terminal must not stall the children

    def _warn(self, message: str) -> None:
        line = f"devstack: warning: {message}\n".encode()
        if self.screen is not None:
            self._show(line)
        else:
            try:
                sys.stderr.buffer.write(line)
                sys.stderr.buffer.flush()
            except (OSError, ValueError):
                pass

    # -- control -------------------------------------------------------------------------------
    def hold(self) -> None:
        """Keep terminal lines back (files still get them) until release(): a spinner is up."""
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
            if held:
                self._show(b"".join(held))

    def close(self) -> None:
        with self._lock:
            for (source, stream), rest in list(self._partial.items()):
                if rest:
                    self._emit(source, stream, rest + b"\n")
            self._partial.clear()
            held, self._held = self._held, None
            if held:
                self._show(b"".join(held))
            if self.store is not None:
                self.store.close()
        if self.screen is not None:
            self.screen.close()

    def flush(self) -> None:
        """Wait until the terminal has everything fed so far (tests, and before exiting)."""
        if self.screen is not None:
            self.screen.flush()
