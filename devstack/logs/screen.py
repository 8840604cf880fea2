"""The terminal side of the live view, on its own thread.

A terminal can stop reading (Ctrl-S, a slow remote terminal, a paused pager). If the reader
threads wrote to it directly, they would block, the children's pipes would fill, and the app
would hang writing its access log. Here they only queue; this thread writes. Past `limit`
queued bytes the screen skips lines and says how many; the log files still get every line.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import BinaryIO

LIMIT = 64 * 1024 * 1024


class Screen:
    def __init__(self, terminal: BinaryIO, limit: int = LIMIT) -> None:
        self.terminal: BinaryIO | None = terminal
        self.limit = limit
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._skipped = 0
        self._closing = False
        self._busy = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name="screen")
        self._thread.start()

    def put(self, body: bytes) -> None:
        with self._cond:
            if self.terminal is None:
                return
            if self._queued + len(body) > self.limit:
                self._skipped += body.count(b"\n")
                return
            self._queue.append(body)
            self._queued += len(body)
            if not self._busy:  # a busy writer takes the whole queue when its write returns
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._skipped and not self._closing:
                    self._cond.wait()
                if not self._queue and not self._skipped:
                    return  # closing, and everything is out
                body = b"".join(self._queue)
                self._queue.clear()
                self._queued = 0
                skipped, self._skipped = self._skipped, 0
                terminal = self.terminal
                self._busy = True
            if skipped:
                body += (
                    f"devstack: {skipped} lines not shown (the terminal was not reading); "
                    "`devstack logs` has them all\n"
                ).encode()
            try:
                if terminal is not None:
                    terminal.write(body)
                    terminal.flush()
            except (OSError, ValueError):
                with self._cond:
                    self.terminal = None  # the terminal went away: the files go on
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is on the terminal."""
        with self._cond:
            self._cond.wait_for(
                lambda: not (self._queue or self._skipped or self._busy) or self.terminal is None, timeout
            )

    def close(self, timeout: float = 5.0) -> None:
        """Write out what is queued (a terminal that never reads again gets `timeout`)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
