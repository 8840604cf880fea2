"""After a code reload, gunicorn's old worker exits within a grace period, or devstack stops it.

A HUP makes gunicorn's master fork a new worker and TERM the old one, which then finishes its
requests first. An open websocket is a request that does not end, and a gthread worker joins its
pool's threads on the way out: measured on examples/classic with one Socket.IO client connected,
the old worker was still running 10 s after the reload, beside the new one (and would until the
client left) — two workers, where Socket.IO needs one. So the old workers are watched for the
grace period gunicorn was given (--graceful-timeout, plan.py) and then QUIT (gunicorn_conf.py's
worker_int runs the app's atexit handlers and exits at once), KILLed if even that is ignored,
and devstack says so in one line.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from devstack.system import kill

if TYPE_CHECKING:
    import psutil

GRACE = 3.5  # gunicorn's --graceful-timeout (3 s, plan.gunicorn_spec) and a little
QUIT_WAIT = 1.0


def workers_of(master: int) -> list[psutil.Process]:
    """The master's workers now (taken before the HUP: afterwards the new one is among them)."""
    import psutil  # not at the top: the path to gunicorn's start skips its import

    try:
        return list(psutil.Process(master).children())
    except psutil.Error:
        return []


def watch(old: list[psutil.Process], say: Callable[[str], None], grace: float = GRACE) -> threading.Thread:
    """Wait `grace` s for the old workers on a thread of its own; stop those left, and say so."""
    thread = threading.Thread(target=_retire, args=(old, say, grace), daemon=True, name="retire-workers")
    thread.start()
    return thread


def _retire(old: list[psutil.Process], say: Callable[[str], None], grace: float) -> None:
    import psutil

    _, left = psutil.wait_procs(old, timeout=grace)
    left = [proc for proc in left if kill.alive(proc)]  # a zombie its master has yet to reap is gone
    if not left:
        return
    for proc in left:
        _signal(proc, signal.SIGQUIT)
    _, stubborn = psutil.wait_procs(left, timeout=QUIT_WAIT)
    for proc in stubborn:
        _signal(proc, signal.SIGKILL)
    pids = ", ".join(str(proc.pid) for proc in left)
    how = "killed" if any(kill.alive(proc) for proc in stubborn) else "stopped"
    say(
        f"old worker (pid {pids}) still running {grace:.1f} s after the reload — an open "
        f"connection (a websocket) held it: {how}, the new worker serves"
    )


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    import psutil

    try:
        proc.send_signal(sig)  # psutil checks the PID is still that process first
    except psutil.Error:
        pass
