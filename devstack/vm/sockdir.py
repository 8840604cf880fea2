"""A private (0700, ours) directory for the ssh ControlMaster socket.

A predictable socket path in world-writable /tmp could be planted by another user, and ssh
would then send our session through their master. The socket therefore lives in a directory
only we can write, and a socket found there is reused only when we own it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from devstack.errors import DevstackError, Exit


def private_dir(environ: dict[str, str] | None = None, uid: int | None = None) -> Path:
    """`$XDG_RUNTIME_DIR/devstack` when the runtime dir is ours, else `<tmp>/devstack-<uid>`; 0700."""
    env = os.environ if environ is None else environ
    me = os.getuid() if uid is None else uid
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and _is_private(Path(runtime), me):
        path = Path(runtime) / "devstack"
    else:
        # The short, fixed parent keeps the socket path under the ~100-byte AF_UNIX limit.
        path = Path(tempfile.gettempdir()) / f"devstack-{me}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise DevstackError(
            f"cannot create {path}: {exc.strerror} — remove it or set TMPDIR", Exit.VM
        ) from exc
    if not _is_private(path, me):
        raise DevstackError(
            f"{path} is not a private directory of uid {me} (a symlink, another owner, or group/other "
            f"access) — remove it (`rm -rf {path}`) so devstack can create its own",
            Exit.VM,
        )
    return path


def _is_private(path: Path, uid: int) -> bool:
    """A real directory (lstat: not a symlink) of `uid` that no one else can enter."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077


def is_our_socket(path: Path, uid: int | None = None) -> bool:
    """True for a unix socket (not a symlink to one) owned by us."""
    me = os.getuid() if uid is None else uid
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == me
