"""`devstack up --detach` forks first: the process the shell started only waits for the
daemon's verdict, and the daemon does everything else — with gunicorn's head start
(speed/headstart.py) spawned before devstack's own imports, so they overlap its boot.

The daemon prints what `up` prints (warnings, the spinner, "ready") on the terminal it inherited,
then points its own output at logs/supervisor.out and releases the parent with an exit code, or
with the error the parent then says as any command does. A daemon that ends without a verdict
(an error it printed itself) hands the parent its exit status.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from devstack import speed
from devstack.speed import headstart

_verdict_fd: int | None = None  # in the daemon: the pipe its parent waits on


def split(config_arg: str | None) -> Callable[[], int] | None:
    """Fork. The parent gets the wait for the daemon's verdict (returns its exit code, or
    raises its error); the daemon gets None and carries on as the command, its head start made."""
    global _verdict_fd
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(write)
        return lambda: _await_verdict(read, pid)
    os.close(read)
    os.setsid()  # the terminal's Ctrl-C and hang-up reach the waiting parent only
    _verdict_fd = write
    if speed.on("gate"):  # gunicorn imports while this daemon reads the config and plans
        headstart.launch_gated(config_arg)
    return None


def parent_waits() -> bool:
    """This process is `up --detach`'s daemon and its parent still waits for the verdict."""
    return _verdict_fd is not None


def release(code: int, error: str = "") -> None:
    """The verdict: the parent exits with code (saying error first, as a command error)."""
    global _verdict_fd
    fd, _verdict_fd = _verdict_fd, None
    if fd is None:
        return
    try:
        os.write(fd, json.dumps({"code": code, "error": error}).encode())
    except OSError:  # the parent is gone (Ctrl-C): nobody to tell
        pass
    os.close(fd)


def _await_verdict(read: int, pid: int) -> int:
    chunks = []
    while True:
        data = os.read(read, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(read)
    if chunks:
        verdict = json.loads(b"".join(chunks))
        if verdict.get("error"):
            from devstack.errors import DevstackError, Exit

            code = int(verdict["code"])
            raise DevstackError(str(verdict["error"]), Exit(code) if code in set(Exit) else Exit.ERROR)
        return int(verdict["code"])
    _, status = os.waitpid(pid, 0)  # the daemon said its own error (or crashed) and ended
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
