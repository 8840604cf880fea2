"""The log files: `.devstack/logs/<source>.log`, appended to, rotated by size.

Rotation: <name>.log -> <name>.log.1 -> ... -> <name>.log.<backups>; the oldest is dropped. The
file is closed before it is renamed, so a follower that sees a new inode knows the old file is
complete. A failing disk (full, read-only, gone) costs one warning; the caller's live view goes on.

Nothing here follows a symbolic link: the folder is opened once (O_NOFOLLOW) and every file is
opened, renamed and removed relative to that descriptor, each file with O_NOFOLLOW too — a link
planted as `gunicorn.stdout.log -> ~/.bashrc` is refused with a warning naming it.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from devstack.system import safefs

_GENERATION = re.compile(r"\.log\.(\d+)$")


def generations(log_dir: Path, source: str, backups: int = 100) -> list[Path]:
    """A source's files, oldest first (rotated ones, then the current one)."""
    base = f"{source}.log"
    try:
        names = os.listdir(log_dir)  # one listing, not one stat per possible generation
    except OSError:
        names = []
    found = []
    for name in names:
        if name.startswith(base):
            match = _GENERATION.match(name, len(source))
            if match and 0 < int(match.group(1)) <= backups:
                found.append(int(match.group(1)))
    return [log_dir / f"{base}.{i}" for i in sorted(found, reverse=True)] + [log_dir / base]


class LogStore:
    def __init__(self, log_dir: Path, max_bytes: int, backups: int, warn: Callable[[str], None]) -> None:
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.backups = backups
        self._warn = warn
        self._fds: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self.failing: set[str] = set()  # sources whose file cannot be written now
        self._dir: int | None = None
        try:
            self._open_dir()
        except (OSError, safefs.HostileFile) as exc:
            self._failed("", exc)

    def _open_dir(self) -> int:
        if self._dir is None:
            with contextlib.suppress(FileExistsError):
                safefs.refuse_link(self.log_dir)
                self.log_dir.mkdir(parents=True)
            self._dir = safefs.open_dir(self.log_dir)
        return self._dir

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
        except (OSError, safefs.HostileFile) as exc:
            self._failed(source, exc)

    def _open(self, source: str) -> int:
        folder = self._open_dir()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        fd = safefs.open_file(f"{source}.log", flags, 0o644, dir_fd=folder)
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            os.fchmod(fd, 0o644)  # readable by the user even when devstack runs as root
        self._fds[source] = fd
        self._sizes[source] = info.st_size
        return fd

    def _failed(self, source: str, exc: OSError | safefs.HostileFile) -> None:
        """One warning while anything fails (not one per line, not one per file)."""
        if not self.failing:
            if isinstance(exc, safefs.HostileFile):
                self._warn(f"{exc}; until then no log file is written, the stack and the live view go on")
            else:
                self._warn(
                    f"cannot write logs to {self.log_dir} ({getattr(exc, 'strerror', None) or exc}); "
                    "the stack and the live view go on"
                )
        self.failing.add(source)

    def _rotate(self, source: str) -> None:
        os.close(self._fds.pop(source))
        self._sizes.pop(source)
        folder = self._open_dir()
        base = f"{source}.log"
        if self.backups == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base, dir_fd=folder)
            return
        # rename() never follows a link: a planted one is moved along, not written through.
        for index in range(self.backups - 1, 0, -1):
            try:
                os.replace(f"{base}.{index}", f"{base}.{index + 1}", src_dir_fd=folder, dst_dir_fd=folder)
            except FileNotFoundError:
                continue
        os.replace(base, f"{base}.1", src_dir_fd=folder, dst_dir_fd=folder)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._sizes.clear()
        if self._dir is not None:
            with contextlib.suppress(OSError):
                os.close(self._dir)
            self._dir = None
