"""Byte-level formatting shared by the live view and `devstack logs`.

Everything works on whole chunks (many lines at once) with bytes.replace/join, never on one
Python object per line: that is what makes the multiplexer fast.

File record: `<UTC time, 27 bytes>Z <o|e|d> <text>\\n`; the time is ISO 8601 with microseconds, so
records sort by their first 27 bytes and merging never parses a date.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

UTC = timezone.utc  # noqa: UP017 - datetime.UTC is 3.11+; the guest agent runs on 3.10

STREAM_CODES = {"stdout": b"o", "stderr": b"e", "devstack": b"d"}
CODE_STREAMS = {b"o": "stdout", b"e": "stderr", b"d": "devstack"}
STAMP_LEN = 27  # 2026-01-02T03:04:05.123456Z
# Stable colors: a source keeps its color across runs (chosen by name, not by start order).
# Extra processes draw from colors the named sources do not use.
PALETTE = (b"34", b"91", b"96", b"93", b"92", b"95", b"94", b"31")
NAMED_COLORS = {
    "gunicorn": b"36",
    "nginx.access": b"32",
    "nginx.error": b"33",
    "watcher": b"35",
    "devstack": b"1",
}
MARKERS = {"stdout": b"|", "stderr": b"!", "devstack": b"*"}
RESET = b"\x1b[0m"
# CSI sequences (colors, cursor moves), OSC (titles, links) and two-byte escapes.
# Never across a newline (stripping must not swallow lines); a cut-off sequence and a lone ESC
# go too, so "no escape codes" holds for any bytes a child writes.
_ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    rb"|\x1b[@-Z\\-_]|\x1b"
)


def color_for(source: str) -> bytes:
    if source in NAMED_COLORS:
        return NAMED_COLORS[source]
    # crc-free and stable across runs and machines (hash() is salted per process).
    return PALETTE[sum(source.encode()) % len(PALETTE)]


def strip_ansi(data: bytes) -> bytes:
    return _ANSI.sub(b"", data) if b"\x1b" in data else data


def normalize(block: bytes) -> bytes:
    """CRLF line ends (Windows-minded tools, ptys) -> LF, so a line never ends in a stray \\r."""
    return block.replace(b"\r\n", b"\n") if b"\r" in block else block


def prefix_lines(block: bytes, head: bytes) -> bytes:
    """block holds whole lines, each ending in \\n: put head before every one of them."""
    return head + block[:-1].replace(b"\n", b"\n" + head) + b"\n"


class Clock:
    """Time stamps, formatted once per second and reused: strftime per chunk costs too much."""

    def __init__(self) -> None:
        self._utc_second = -1
        self._utc_head = b""
        self._local_second = -1
        self._local = b""

    def utc(self, now: float) -> bytes:
        second = int(now)
        if second != self._utc_second:
            self._utc_second = second
            self._utc_head = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
        micros = int((now - second) * 1_000_000)
        return self._utc_head + b".%06dZ" % min(micros, 999_999)

    def local(self, now: float) -> bytes:
        second = int(now)
        if second != self._local_second:
            self._local_second = second
            self._local = time.strftime("%H:%M:%S", time.localtime(second)).encode()
        return self._local


def stamp_to_epoch(stamp: bytes) -> float:
    """Inverse of Clock.utc (for rendering stored records in local time)."""
    parsed = datetime.strptime(stamp[:19].decode("ascii"), "%Y-%m-%dT%H:%M:%S")
    return parsed.replace(tzinfo=UTC).timestamp() + int(stamp[20:26] or b"0") / 1e6


def terminal_head(clock: bytes, source: str, stream: str, width: int, color: bool) -> bytes:
    """`12:00:01 gunicorn     | ` (colored name and marker when color is on)."""
    name = source.encode().ljust(width)
    marker = MARKERS.get(stream, b"|")
    if color:
        return clock + b" \x1b[" + color_for(source) + b"m" + name + b" " + marker + RESET + b" "
    return clock + b" " + name + b" " + marker + b" "


def for_screen(block: bytes, color: bool) -> bytes:
    """A child's own escape codes: dropped without color; with color, reset at each line end so
    a color a child left open never bleeds into the next line's prefix."""
    if b"\x1b" not in block:
        return block
    if not color:
        return strip_ansi(block)
    return block.replace(b"\n", RESET + b"\n")


def width_for(names: list[str] | tuple[str, ...], minimum: int = 8, maximum: int = 20) -> int:
    """Aligned prefixes: as wide as the longest name, within limits."""
    return max(minimum, min(maximum, max((len(n) for n in names), default=minimum)))
