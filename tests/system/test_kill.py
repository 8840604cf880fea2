"""system/kill.py, the one TERM-wait-KILL: on real process groups, one that ignores TERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from devstack.system import kill
from tests.support.stack import wait_for

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def group(
    script: str, handled: signal.Signals | None = None
) -> tuple[subprocess.Popen[bytes], list[psutil.Process]]:
    """A shell leading its own group, with two children (each ignoring or catching `handled`,
    once they have installed their handlers)."""
    proc = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True)
    members = three_members(proc)
    if handled is not None:
        assert wait_for(lambda: all(handles(m.pid, handled) for m in members[1:])), members
    return proc, members


def handles(pid: int, sig: signal.Signals) -> bool:
    """The process ignores or catches sig: /proc/PID/status's SigIgn and SigCgt masks."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    masks = dict(
        line.split(":\t", 1) for line in status.splitlines() if line.startswith(("SigIgn", "SigCgt"))
    )
    return any(int(mask, 16) >> (sig - 1) & 1 for mask in masks.values())


def three_members(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The leader and its two children, once both exist."""
    members: list[psutil.Process] = []
    for _ in range(250):
        members = kill.group_members(proc.pid)
        if len(members) >= 3:
            break
        time.sleep(0.02)
    return members


def test_a_polite_group_ends_on_term() -> None:
    proc, members = group("sleep 60 & sleep 60 & wait")
    assert len(members) == 3
    killed = kill.stop_group(proc.pid, grace=5.0, exited=lambda: proc.poll() is not None)
    assert not killed and proc.returncode is not None
    assert not any(kill.alive(m) for m in members)


def test_a_worker_ignoring_term_is_killed_after_the_grace() -> None:
    proc, members = group(
        f"{sys.executable} -c '{IGNORES_TERM}' & {sys.executable} -c '{IGNORES_TERM}' & wait",
        handled=signal.SIGTERM,
    )
    assert len(members) == 3
    assert kill.stop_group(proc.pid, grace=0.5, exited=lambda: proc.poll() is not None)
    proc.wait(timeout=5)
    assert not any(kill.alive(m) for m in members)


def test_stop_pid_only_while_it_is_ours() -> None:
    proc = subprocess.Popen([sys.executable, "-c", IGNORES_TERM])
    assert wait_for(lambda: handles(proc.pid, signal.SIGTERM))
    assert kill.stop_pid(proc.pid, lambda: proc.poll() is None, grace=0.3)  # needed the KILL
    assert proc.wait(timeout=5) == -9
    # Not ours any more (the check says so): nothing is signalled, nothing is killed.
    assert not kill.stop_pid(proc.pid, lambda: False, grace=0.3)


# A master that passes SIGQUIT on to its workers itself (as gunicorn's does), then lingers.
MASTER = """
import os, signal, subprocess, sys, time
worker = (
    "import signal, sys, time\\n"
    "def quit(*_):\\n"
    "    open(sys.argv[1], 'a').write('quit\\\\n')\\n"
    "    time.sleep(0.2)\\n"
    "    sys.exit(0)\\n"
    "signal.signal(signal.SIGQUIT, quit)\\n"
    "time.sleep(60)\\n"
)
kids = [subprocess.Popen([sys.executable, "-c", worker, f"{sys.argv[1]}.{i}"]) for i in (1, 2)]
def quit(*_):
    for kid in kids:
        kid.send_signal(signal.SIGQUIT)
    time.sleep(60)  # its own bookkeeping, which a stop need not wait for
signal.signal(signal.SIGQUIT, quit)
time.sleep(60)
"""


def test_leader_only_quits_the_master_once_and_kills_it_after_its_workers(tmp_path: Path) -> None:
    marks = tmp_path / "quit"
    proc = subprocess.Popen([sys.executable, "-c", MASTER, str(marks)], start_new_session=True)
    members = three_members(proc)
    assert len(members) == 3
    assert wait_for(lambda: all(handles(m.pid, signal.SIGQUIT) for m in members))
    killed = kill.stop_group(
        proc.pid, signal.SIGQUIT, grace=10.0, exited=lambda: proc.poll() is not None, leader_only=True
    )
    assert not killed  # no KILL of the group: only the lingering master's
    assert proc.returncode == -signal.SIGKILL
    # Each worker was told once, by its master (a second QUIT from us would show here).
    for i in (1, 2):
        assert Path(f"{marks}.{i}").read_text() == "quit\n"
    assert not any(kill.alive(m) for m in members)
