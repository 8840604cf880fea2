"""Reading the log files back: select sources, last N lines, since a time, merge, follow.

A record is (stamp, source, code, text): stamp is the 27-byte UTC time, so records from several
files merge by plain bytes comparison; text is the raw line without its newline.
"""

from __future__ import annotations

import heapq
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from devstack.logs import format as fmt
from devstack.logs.store import generations

Record = tuple[bytes, str, bytes, bytes]
_ROTATED = re.compile(r"^(?P<name>.+)\.log(?:\.\d+)?$")
BLOCK = 64 * 1024


def sources(log_dir: Path) -> list[str]:
    """Every source with a current or rotated file, sorted."""
    found: set[str] = set()
    try:
        entries = list(log_dir.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _ROTATED.match(entry.name)
        if match:
            found.add(match.group("name"))
    return sorted(found)


def matches(source: str, names: Iterable[str]) -> bool:
    """`nginx` selects nginx.access and nginx.error; a full name selects itself."""
    return any(source == n or source.startswith(n + ".") for n in names)


def parse(raw: bytes, source: str, last_stamp: bytes) -> Record:
    if len(raw) >= fmt.STAMP_LEN + 2 and raw[fmt.STAMP_LEN] == 0x20:
        return (
            raw[: fmt.STAMP_LEN],
            source,
            raw[fmt.STAMP_LEN + 1 : fmt.STAMP_LEN + 2],
            raw[fmt.STAMP_LEN + 3 :],
        )
    # Not ours (a file edited by hand, a torn write): keep the text, date it like its neighbour.
    return last_stamp, source, b"o", raw


def _records(lines: Iterable[bytes], source: str) -> Iterator[Record]:
    last = b"0" * fmt.STAMP_LEN
    for raw in lines:
        record = parse(raw, source, last)
        last = record[0]
        yield record


def _file_lines(path: Path, stop: int | None = None) -> Iterator[bytes]:
    """Lines of one file without their newline; `stop` caps the bytes read (a snapshot)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed in finally; a generator)
    except OSError:
        return
    try:
        remaining = stop
        rest = b""
        while True:
            size = BLOCK * 16 if remaining is None else min(BLOCK * 16, remaining)
            chunk = handle.read(size) if size else b""
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest
    finally:
        handle.close()


def _tail_file(path: Path, count: int, stop: int | None = None) -> list[bytes]:
    """The last `count` lines of one file, read backwards in blocks (a 1 GB log costs nothing)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except OSError:
        return []
    with handle:
        end = handle.seek(0, os.SEEK_END) if stop is None else stop
        chunks: list[bytes] = []
        newlines = 0
        pos = end
        while pos > 0 and newlines <= count:
            step = min(BLOCK, pos)
            pos -= step
            handle.seek(pos)
            chunk = handle.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    lines = b"".join(reversed(chunks)).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if pos > 0:
        lines = lines[1:]  # the first piece may be the end of an earlier line
    return lines[-count:] if count else []


class Snapshot:
    """Where each current file ended when reading began: `--follow` picks up exactly there."""

    def __init__(self) -> None:
        self.ends: dict[str, tuple[int, int]] = {}  # source -> (inode, size)

    def take(self, log_dir: Path, source: str) -> int | None:
        try:
            info = os.stat(log_dir / f"{source}.log")
        except OSError:
            return None
        self.ends[source] = (info.st_ino, info.st_size)
        return info.st_size


def history(
    log_dir: Path,
    chosen: list[str],
    lines: int | None,
    keep: Callable[[Record], bool] | None,
    snapshot: Snapshot,
) -> Iterator[Record]:
    """Stored records of the chosen sources, merged in time order; the last `lines` if given."""
    streams: list[Iterable[Record]] = []
    for source in chosen:
        files = generations(log_dir, source)
        stop = snapshot.take(log_dir, source)
        if lines is not None and keep is None:
            streams.append(_records(_tail_lines(files, lines, stop), source))
            continue
        records: Iterable[Record] = _records(_all_lines(files, stop), source)
        if keep is not None:
            records = filter(keep, records)
        if lines is not None:
            records = deque(records, maxlen=lines)
        streams.append(records)
    merged: Iterable[Record] = heapq.merge(*streams, key=lambda r: r[0])
    if lines is not None:
        merged = deque(merged, maxlen=lines)
    yield from merged


def _all_lines(files: list[Path], stop: int | None) -> Iterator[bytes]:
    for path in files[:-1]:
        yield from _file_lines(path)
    yield from _file_lines(files[-1], stop)


def _tail_lines(files: list[Path], count: int, stop: int | None) -> list[bytes]:
    found: list[bytes] = []
    for index, path in enumerate(reversed(files)):
        need = count - len(found)
        if need <= 0:
            break
        found = _tail_file(path, need, stop if index == 0 else None) + found
    return found


class _Tail:
    """One followed file: survives rotation (new inode) and truncation (size went down).

    Several rotations between two polls are fine too: the generations between the file we had
    open and the current one are read in full, oldest first.
    """

    def __init__(self, path: Path, source: str, inode: int | None, pos: int) -> None:
        self.path = path
        self.source = source
        self.handle: BinaryIO | None = None
        self.rest = b""
        self.last = b"0" * fmt.STAMP_LEN
        if inode is None:
            return
        # The snapshotted file, even if it was rotated away since: nothing between is lost.
        for candidate in reversed(self._generations()):
            try:
                handle = open(candidate, "rb")  # noqa: SIM115 (kept open while following)
            except OSError:
                continue
            if os.fstat(handle.fileno()).st_ino == inode:
                handle.seek(pos)
                self.handle = handle
                return
            handle.close()

    def _generations(self) -> list[Path]:
        return generations(self.path.parent, self.source)

    def poll(self) -> list[Record]:
        try:
            info: os.stat_result | None = os.stat(self.path)
        except OSError:
            info = None
        data = b""
        if self.handle is not None:
            mine = os.fstat(self.handle.fileno())
            same = info is not None and info.st_ino == mine.st_ino
            if same and info is not None and info.st_size < self.handle.tell():
                self.handle.seek(0)  # truncated in place: start over
                self.rest = b""
            data = self.handle.read()
            if info is not None and not same:
                # Rotated: the writer closed the old file before renaming it, so what we just
                # read is its end. Then any newer rotated generations, then the new file.
                self.handle.close()
                self.handle = None
                data += self._newer_than(mine.st_ino)
        if self.handle is None and info is not None:
            try:
                self.handle = open(self.path, "rb")  # noqa: SIM115
            except OSError:
                return self._cut(data)
            data += self.handle.read()
        return self._cut(data)

    def _newer_than(self, inode: int) -> bytes:
        rotated = self._generations()[:-1]  # oldest first, without the current file
        inodes = []
        for path in rotated:
            try:
                inodes.append(os.stat(path).st_ino)
            except OSError:
                inodes.append(-1)
        # Not found: the old file fell off the end, so every generation left is newer.
        newer = rotated[inodes.index(inode) + 1 :] if inode in inodes else rotated
        chunks = []
        for path in newer:
            try:
                chunks.append(path.read_bytes())
            except OSError:
                continue
        return b"".join(chunks)

    def _cut(self, data: bytes) -> list[Record]:
        if not data:
            return []
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()  # a record being written: wait for its newline
        out = []
        for raw in lines:
            record = parse(raw, self.source, self.last)
            self.last = record[0]
            out.append(record)
        return out

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class Follower:
    """New records of the chosen sources, in time order within each poll."""

    def __init__(self, log_dir: Path, names: list[str], snapshot: Snapshot) -> None:
        self.log_dir = log_dir
        self.names = names
        self.tails: dict[str, _Tail] = {}
        for source, (inode, size) in snapshot.ends.items():
            self.tails[source] = _Tail(log_dir / f"{source}.log", source, inode, size)
        self._discover()

    def _discover(self) -> None:
        """A source that appeared after the snapshot (a process started later, or a file that
        was rotated away meanwhile): follow its current file from the start."""
        for source in sources(self.log_dir):
            if source in self.tails or (self.names and not matches(source, self.names)):
                continue
            self.tails[source] = _Tail(self.log_dir / f"{source}.log", source, None, 0)

    def poll(self) -> list[Record]:
        self._discover()
        batch: list[Record] = []
        for tail in self.tails.values():
            batch.extend(tail.poll())
        batch.sort(key=lambda r: r[0])  # stable: a source's own order is kept on equal stamps
        return batch

    def close(self) -> None:
        for tail in self.tails.values():
            tail.close()
