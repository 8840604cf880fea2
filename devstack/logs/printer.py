"""Stored records -> what `devstack logs` prints: prefixed lines, bare lines, or JSON lines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import BinaryIO

from devstack.logs import format as fmt
from devstack.logs.reader import Record


class Printer:
    def __init__(
        self, out: BinaryIO, color: bool = False, prefix: bool = True, as_json: bool = False, width: int = 12
    ) -> None:
        self.out = out
        self.color = color
        self.prefix = prefix
        self.as_json = as_json
        self.width = width
        self._clock_of: dict[bytes, bytes] = {}  # one strptime per second, not per line
        self._heads: dict[tuple[bytes, str, bytes], bytes] = {}

    def write(self, records: Iterable[Record]) -> int:
        """Print the records (flushed in batches); returns how many were printed."""
        batch: list[bytes] = []
        count = 0
        for record in records:
            batch.append(self.render(record))
            count += 1
            if len(batch) >= 4096:
                self._flush(batch)
        self._flush(batch)
        return count

    def _flush(self, batch: list[bytes]) -> None:
        if batch:
            self.out.write(b"".join(batch))
            self.out.flush()
            batch.clear()

    def render(self, record: Record) -> bytes:
        stamp, source, code, text = record
        if self.as_json:
            return (
                json.dumps(
                    {
                        "time": stamp.decode("ascii", "replace"),
                        "process": source,
                        "stream": fmt.CODE_STREAMS.get(code, "stdout"),
                        "line": fmt.strip_ansi(text).decode("utf-8", "replace"),
                    },
                    ensure_ascii=False,
                ).encode("utf-8")
                + b"\n"
            )
        body = fmt.for_screen(text + b"\n", self.color)
        if not self.prefix:
            return body
        return self._head(stamp, source, code) + body

    def _head(self, stamp: bytes, source: str, code: bytes) -> bytes:
        second = stamp[:19]
        clock = self._clock_of.get(second)
        if clock is None:
            if len(self._clock_of) > 4096:  # following for hours: keep the caches small
                self._clock_of.clear()
                self._heads.clear()
            try:
                moment = time.localtime(fmt.stamp_to_epoch(stamp))
                clock = time.strftime("%H:%M:%S", moment).encode()
            except ValueError:
                clock = b"??:??:??"
            self._clock_of[second] = clock
        key = (clock, source, code)
        head = self._heads.get(key)
        if head is None:
            stream = fmt.CODE_STREAMS.get(code, "stdout")
            head = fmt.terminal_head(clock, source, stream, self.width, self.color)
            self._heads[key] = head
        return head
