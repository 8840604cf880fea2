"""The log files: `.devstack/logs/<source>.log`, appended to, rotated by size.

Rotation: <name>.log -> <name>.log.1 -> ... -> <name>.log.<backups>; the oldest is dropped. The
file is closed before it is renamed, so a follower that sees a new inode knows the old file is
complete. A failing disk (full, read-only, gone) costs one warning; the caller's live view goes on.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path


def generations(log_dir: Path, source: str, backups: int = 100) -> list[Path]:
    """A source's files, oldest first (rotated ones, then the current one)."""
    base = log_dir / f"{source}.log"
    older = [base.with_name(f"{base.name}.{i}") for i in range(backups, 0, -1)]
    return [p for p in older if p.exists()] + [base]


class LogStore:
    def __init__(self, log_dir: Path, max_bytes: int, backups: int, warn: Callable[[str], None]) -> None:
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.backups = backups
        self._warn = warn
        self._fds: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self.failing: set[str] = set()  # sources whose file cannot be written now
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._failed("", exc)

    def write(self, source: str, data: bytes) -> None:
        try:
            fd = self._fds.get(source)
            if fd is None:
                fd = self._open(source)
            view = memoryview(data)
            while view:  # a regular file takes it all at once unless the disk is full
                view = view[os.write(fd, view) :]
            self._sizes[source] += len(data)
            if self._sizes[source] >= self.max_bytes:
                self._rotate(source)
            if source in self.failing:
                self.failing.discard(source)
                if not self.failing:
                    self._warn(f"writing logs to {self.log_dir} works again")
        except OSError as exc:
            self._failed(source, exc)

    def _open(self, source: str) -> int:
        path = self.log_dir / f"{source}.log"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            os.fchmod(fd, 0o644)  # readable by the user even when devstack runs as root
        self._fds[source] = fd
        self._sizes[source] = info.st_size
        return fd

    def _failed(self, source: str, exc: OSError) -> None:
        """One warning while anything fails (not one per line, not one per file)."""
        if not self.failing:
            self._warn(
                f"cannot write logs to {self.log_dir} ({exc.strerror or exc}); "
                "the stack and the live view go on"
            )
        self.failing.add(source)

    def _rotate(self, source: str) -> None:
        os.close(self._fds.pop(source))
        self._sizes.pop(source)
        base = self.log_dir / f"{source}.log"
        if self.backups == 0:
            base.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            older = base.with_name(f"{base.name}.{index}")
            if older.exists():
                os.replace(older, base.with_name(f"{base.name}.{index + 1}"))
        os.replace(base, base.with_name(f"{base.name}.1"))

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._sizes.clear()
