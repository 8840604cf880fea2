"""Files under .devstack/ opened without following symbolic links.

Everything devstack writes there (logs, state.json, nginx.conf, nginx's pid and temp folders) is
written with the user's rights. A symlink planted in .devstack/ (`logs/gunicorn.stdout.log ->
~/.bashrc`) would make devstack or nginx append to, truncate or replace whatever it points at, so
nothing here follows one: files are opened with O_NOFOLLOW, folders are checked with lstat (and
the log store opens its folder once, then works relative to that descriptor).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from devstack.errors import DevstackError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class HostileFile(DevstackError):
    """A symbolic link (or another non-regular file) where devstack keeps its own files."""


# A folder devstack cannot write to: read-only, not the user's, or its disk is full.
WRITE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


class Unwritable(DevstackError):
    """devstack's own folder (.devstack/) cannot be written: one line with the path and the fix."""


def unwritable(path: Path | str, exc: OSError) -> Unwritable:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space on that disk and run the command again"
    else:
        fix = "make the project folder writable for you (devstack keeps its state in .devstack/ there)"
    return Unwritable(f"cannot write {path}: {exc.strerror or exc} — {fix}")


def link_message(path: Path | str) -> str:
    """The one line said about a planted symlink: the path, where it points, the fix."""
    try:
        target = f" (pointing to {os.readlink(path)})"
    except OSError:
        target = ""
    return (
        f"{path} is a symbolic link{target}: devstack never writes through a link in its state "
        f"folder — remove it (rm {path}) and run the command again"
    )


def refuse_link(path: Path | str) -> None:
    """Raise HostileFile if path itself is a symlink (a missing path is fine)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise HostileFile(link_message(path))


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    """mkdir -p for a folder of ours, refusing a symlink (to a folder or not) in its place."""
    refuse_link(path)
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise unwritable(exc.filename or path, exc) from None
        raise
    refuse_link(path)  # created between the two checks by someone else


def open_dir(path: Path) -> int:
    """A descriptor of the folder itself, never of a symlink's target."""
    try:
        return os.open(path, os.O_RDONLY | DIRECTORY | NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise HostileFile(link_message(path)) from None
        raise


def open_file(path: Path | str, flags: int, mode: int = 0o644, dir_fd: int | None = None) -> int:
    """os.open with O_NOFOLLOW; a symlink there is a HostileFile naming it and the fix."""
    try:
        return os.open(path, flags | NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EEXIST):
            where = Path(os.readlink(f"/proc/self/fd/{dir_fd}")) / path if dir_fd is not None else Path(path)
            if exc.errno == errno.ELOOP or where.is_symlink():
                raise HostileFile(link_message(where)) from None
        raise


def read_bytes(path: Path) -> bytes:
    fd = open_file(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def read_text(path: Path) -> str:
    return read_bytes(path).decode("utf-8", errors="replace")


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace path atomically (readers never see half a file); a symlink there is refused.

    The temporary file is created exclusively, so a link planted under its name fails too.
    """
    refuse_link(path)
    try:
        _write_text(path, text, mode)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise unwritable(path, exc) from None
        raise


def _write_text(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = open_file(tmp, flags, mode)
    except FileExistsError:  # left behind by a crash (a link there is a HostileFile instead)
        os.unlink(tmp)
        fd = open_file(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8", errors="surrogateescape"))
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)  # rename replaces a link planted meanwhile; it never follows one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_tree(root: Path, depth: int = 2) -> None:
    """No symlink in devstack's state folder, two levels deep (logs/*, tmp/<name>).

    vm/ is Vagrant's (its own machine folder); it is never handed to nginx or the log store.
    """
    refuse_link(root)
    _check_entries(root, depth, skip=("vm",))


def _check_entries(folder: Path, depth: int, skip: tuple[str, ...] = ()) -> None:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name in skip:
            continue
        if entry.is_symlink():
            raise HostileFile(link_message(Path(entry.path)))
        if depth > 1 and entry.is_dir(follow_symlinks=False):
            _check_entries(Path(entry.path), depth - 1)
