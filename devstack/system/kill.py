"""The one way devstack stops a process: signal, wait up to a grace period, then KILL.

Three shapes, each written once:
- stop_group: a process group we lead (nginx, gunicorn and their workers, an extra process);
- stop_process: one helper process we hold a handle to (ssh, rsync, a log follower);
- stop_pid: a process known only by PID and a liveness test that checks it is still ours (the
  detached supervisor, as `down` sees it: a recycled PID is never signalled).
Nothing here signals a PID it was not given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


KILL_WAIT = 2.0  # after SIGKILL: the kernel's part, not the process's


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(leader: int) -> list[psutil.Process]:
    """The leader and its descendants, taken before signalling (a dead leader's workers are
    re-parented and would be missed afterwards)."""
    import psutil  # in the functions: the path to gunicorn's start skips its import (~10 ms)

    try:
        proc = psutil.Process(leader)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def alive(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_group(
    leader: int,
    first: signal.Signals = signal.SIGTERM,
    grace: float = 5.0,
    exited: Callable[[], bool] | None = None,
    members: list[psutil.Process] | None = None,
    leader_only: bool = False,
) -> bool:
    """Send `first` to the group led by `leader`, wait until every member is gone (and `exited`
    says the leader was reaped, for a child of ours), then KILL what is left. True when it had
    to KILL. leader_only: `first` goes to the leader, which stops its members itself; once they
    are gone it has only its own bookkeeping left (gunicorn's master: two 0.1 s polls and its
    "Shutting down" line), so it is KILLed then."""
    members = group_members(leader) if members is None else members
    if leader_only:
        _send(leader, first)
    else:
        signal_group(leader, first)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if (exited is None or exited()) and not any(alive(m) for m in members):
            return False
        if leader_only and not any(alive(m) for m in members if m.pid != leader):
            _send(leader, signal.SIGKILL)
            leader_only = False
        time.sleep(0.005)
    signal_group(leader, signal.SIGKILL)
    import psutil

    psutil.wait_procs([m for m in members if alive(m)], timeout=KILL_WAIT)
    return True


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 5.0) -> None:
    """TERM one process we started (not a group), wait, then KILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def stop_pid(pid: int, still_ours: Callable[[], bool], grace: float) -> bool:
    """TERM a process that is not our child, wait for `still_ours()` to turn False (it may stay a
    zombie of its own parent a while), then KILL. True when it had to KILL."""
    _send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    pause = 0.005  # short at first: a healthy stack is gone in well under 0.3 s
    while still_ours() and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(0.01, pause * 1.5)  # a cheap /proc read: a late look is a slower `down`
    if still_ours():
        _send(pid, signal.SIGKILL)
        return True
    return False


def _send(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
