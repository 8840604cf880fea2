"""Where the live-reload sockets live: in the state dir, or a short private folder when that
path is too long for a unix socket (sun_path holds 107 bytes)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

SUN_PATH_MAX = 100  # a little below the kernel's 107, for nginx's "unix:" prefix handling


def socket_dir(state_dir: Path) -> Path:
    state = state_dir.resolve()
    if len(str(state / "live.sock").encode()) <= SUN_PATH_MAX:
        return state
    digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"devstack-{os.getuid()}-{digest}"


def stream_socket(state_dir: Path) -> Path:
    """The tabs' endpoint: nginx proxies /__devstack/ here (HTTP + WebSocket)."""
    return socket_dir(state_dir) / "live.sock"


def notify_socket(state_dir: Path) -> Path:
    """Datagrams to the live server: gunicorn's "worker ready", nginx's CSP log lines (syslog)."""
    return socket_dir(state_dir) / "live.notify"
