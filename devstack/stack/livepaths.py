"""Where the stack's unix sockets live (live reload, gunicorn's control socket): in the state
dir, or a short private folder when that path is too long for a unix socket (sun_path holds
107 bytes: a project a few folders deep is enough to pass it)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from devstack.errors import DevstackError

SUN_PATH_MAX = 100  # a little below the kernel's 107, for nginx's "unix:" prefix handling


LONGEST = "gunicorn.ctl"  # the longest socket name below


def socket_dir(state_dir: Path) -> Path:
    state = state_dir.resolve()
    # nginx reads "$" in a socket path as a variable: such a project gets the short folder too.
    if len(str(state / LONGEST).encode()) <= SUN_PATH_MAX and "$" not in str(state):
        return state
    import hashlib  # only here (~3 ms, with tempfile): a short path needs neither, on `up`'s start
    import tempfile

    digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"devstack-{os.getuid()}-{digest}"


def ensure_socket_dir(state_dir: Path) -> Path:
    """The short folder, made private (0700) and refused if somebody else made it first."""
    folder = socket_dir(state_dir)
    if folder == state_dir.resolve():
        return folder
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise DevstackError(
            f"{folder} (the stack's socket folder, the project path being too long for a unix "
            "socket) is not a private folder of this user — remove it and start again"
        )
    return folder


SOCKET_NAMES = ("gunicorn.ctl", "live.sock", "live.notify", "static-link")


def remove_socket_dir(state_dir: Path) -> None:
    """Once the stack has stopped: the short folder goes (with what the stack put there), so a
    day of projects leaves nothing in the temp dir. A folder that is not ours is left alone."""
    folder = socket_dir(state_dir)
    if folder == state_dir.resolve():
        return
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return
    for name in SOCKET_NAMES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    with contextlib.suppress(OSError):  # not empty: something else is in there, keep it
        os.rmdir(folder)


def static_alias(state_dir: Path, static_dir: Path) -> Path:
    """The static folder as nginx.conf names it. nginx has no escape for "$" in `alias` (it
    reads a variable), so a path with one is reached through a symlink in the socket folder;
    `disable_symlinks ... from=` covers that link and still refuses every symlink below it."""
    if "$" not in str(static_dir):
        return static_dir
    return socket_dir(state_dir) / "static-link"


def control_socket(state_dir: Path) -> Path:
    """gunicorn's control socket (gunicorn >= 25.1 makes one; by default in $HOME)."""
    return socket_dir(state_dir) / "gunicorn.ctl"


def stream_socket(state_dir: Path) -> Path:
    """The tabs' endpoint: nginx proxies /__devstack/ here (HTTP + WebSocket)."""
    return socket_dir(state_dir) / "live.sock"


def notify_socket(state_dir: Path) -> Path:
    """Datagrams to the live server: gunicorn's "worker ready", nginx's CSP log lines (syslog)."""
    return socket_dir(state_dir) / "live.notify"
