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
from devstack.system import safefs

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
    if _stamped(raw):
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


def _open(path: Path) -> BinaryIO | None:
    """A log file for reading, never through a symlink (that is a HostileFile); None if absent."""
    try:
        fd = safefs.open_file(path, os.O_RDONLY)
    except OSError:
        return None
    return os.fdopen(fd, "rb")


def _file_lines(path: Path, stop: int | None = None, start: int = 0) -> Iterator[bytes]:
    """Lines of one file without their newline, from the first line starting at or after
    `start`; `stop` caps the bytes read (a snapshot)."""
    handle = _open(path)
    if handle is None:
        return
    try:
        remaining = None if stop is None else max(0, stop - start)
        rest = b""
        if start > 0:
            # The line that began before `start` is not ours: skip through its newline (which
            # may be the byte just before `start`).
            handle.seek(start - 1)
            if remaining is not None:
                remaining += 1
            drop = True
        else:
            drop = False
        while True:
            size = BLOCK * 16 if remaining is None else min(BLOCK * 16, remaining)
            chunk = handle.read(size) if size else b""
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            if drop:
                cut = chunk.find(b"\n")
                if cut < 0:
                    continue
                chunk, drop = chunk[cut + 1 :], False
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest and not drop:
            yield rest
    finally:
        handle.close()


def _reverse_lines(path: Path, stop: int | None = None) -> Iterator[bytes]:
    """Lines of one file, last first, read backwards in blocks (a 1 GB log costs nothing)."""
    handle = _open(path)
    if handle is None:
        return
    with handle:
        pos = handle.seek(0, os.SEEK_END) if stop is None else stop
        rest = b""
        first = True
        while pos > 0:
            step = min(BLOCK, pos)
            pos -= step
            handle.seek(pos)
            lines = (handle.read(step) + rest).split(b"\n")
            rest = lines[0]
            body = lines[1:]
            if first:
                first = False
                if body and body[-1] == b"":
                    body.pop()  # the file's final newline
            yield from reversed(body)
        if rest:
            yield rest


def _stamp_at(handle: BinaryIO, pos: int) -> bytes | None:
    """The stamp of the first line of ours starting at or after pos (None: none nearby)."""
    handle.seek(max(0, pos - 1))
    block = handle.read(BLOCK // 4)
    lines = block.split(b"\n")
    candidates = lines[1:-1] if pos > 0 else lines[:-1]
    for raw in candidates:
        if _stamped(raw):
            return raw[: fmt.STAMP_LEN]
    return None


def _since_offset(path: Path, since: bytes, stop: int | None) -> int | None:
    """Where to start reading a file for records at or after `since`: a binary search on the
    time-stamped lines. None: every record of the file is older (skip it)."""
    handle = _open(path)
    if handle is None:
        return None
    with handle:
        size = handle.seek(0, os.SEEK_END) if stop is None else stop
        last = next((r for r in _reverse_lines(path, size) if _stamped(r)), None)
        if last is not None and last[: fmt.STAMP_LEN] < since:
            return None
        lo, hi = 0, size
        # Invariant: the first line after lo is older than since (or lo is 0). Unsure (a line
        # not ours, a torn write) means "go left": reading more is safe, skipping is not.
        while hi - lo > BLOCK:
            mid = (lo + hi) // 2
            stamp = _stamp_at(handle, mid)
            if stamp is not None and stamp < since:
                lo = mid
            else:
                hi = mid
        return lo


def _stamped(raw: bytes) -> bool:
    return len(raw) >= fmt.STAMP_LEN + 2 and raw[fmt.STAMP_LEN] == 0x20


class Snapshot:
    """Where each current file ended when reading began: `--follow` picks up exactly there."""

    def __init__(self) -> None:
        self.ends: dict[str, tuple[int, int]] = {}  # source -> (inode, size)

    def take(self, log_dir: Path, source: str) -> int | None:
        try:
            info = os.stat(log_dir / f"{source}.log", follow_symlinks=False)
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
    """Stored records of the chosen sources, merged in time order; the last `lines` if given.

    Never reads more than it must: the last N lines are read backwards from the end (stopping
    at N kept records, or at --since), and --since alone seeks each file by time first.
    """
    # A filter from query.record_filter says how far back it reaches (its `since` stamp).
    since: bytes | None = getattr(keep, "since", None)
    streams: list[Iterable[Record]] = []
    for source in chosen:
        files = generations(log_dir, source)
        stop = snapshot.take(log_dir, source)
        if lines is not None:
            streams.append(_last_records(files, source, lines, keep, since, stop))
            continue
        records: Iterable[Record] = _records(_lines_since(files, since, stop), source)
        if keep is not None:
            records = filter(keep, records)
        streams.append(records)
    merged: Iterable[Record] = heapq.merge(*streams, key=lambda r: r[0])
    if lines is not None:
        merged = deque(merged, maxlen=lines)
    yield from merged


def _lines_since(files: list[Path], since: bytes | None, stop: int | None) -> Iterator[bytes]:
    """Every line of the files (oldest first), from the first one that may be at/after since."""
    for index, path in enumerate(files):
        cap = stop if index == len(files) - 1 else None
        start = 0
        if since is not None:
            found = _since_offset(path, since, cap)
            if found is None:
                continue
            start = found
            since = None  # the newer files are newer still: read them whole
        yield from _file_lines(path, cap, start)


def _last_records(
    files: list[Path],
    source: str,
    count: int,
    keep: Callable[[Record], bool] | None,
    since: bytes | None,
    stop: int | None,
) -> list[Record]:
    """The last `count` records kept by the filter, newest file first, read backwards."""
    found: list[Record] = []  # newest first
    if count <= 0:
        return found
    # Lines not ours wait for the record before them: they are dated like it, as when reading
    # forwards (parse), so both directions agree.
    pending: list[bytes] = []

    def take(record: Record) -> bool:
        """False: stop reading (old enough, or enough found)."""
        if since is not None and record[0] < since:
            return False
        if keep is None or keep(record):
            found.append(record)
        return len(found) < count

    for index, path in enumerate(reversed(files)):
        for raw in _reverse_lines(path, stop if index == 0 else None):
            if not _stamped(raw):
                pending.append(raw)
                continue
            record = parse(raw, source, b"")
            for text in pending:
                if not take((record[0], source, b"o", text)):
                    return found[::-1]
            pending.clear()
            if not take(record):
                return found[::-1]
    for text in pending:
        if not take((b"0" * fmt.STAMP_LEN, source, b"o", text)):
            break
    return found[::-1]


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
            handle = _open(candidate)  # kept open while following
            if handle is None:
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
            self.handle = _open(self.path)
            if self.handle is None:
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
            handle = _open(path)
            if handle is None:
                continue
            with handle:
                chunks.append(handle.read())
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
