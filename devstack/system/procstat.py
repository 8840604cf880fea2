"""Is this PID still the process we recorded? Linux reads /proc/<pid>/stat for the start time
and run state as psutil computes them (boot time + start ticks), without psutil's ~10 ms
import: `up`, `down` and `status` ask it before anything else."""

from __future__ import annotations

import os


def alive(pid: int, create_time: float) -> bool | None:
    """True/False on Linux; None where there is no /proc (the caller asks psutil)."""
    try:
        started, run_state = _stat(pid)
    except FileNotFoundError:
        return False if os.path.isdir("/proc/self") else None
    except (OSError, ValueError):
        return None
    if run_state in (b"Z", b"X"):
        return False
    if abs(started - create_time) > 0.05:
        return False
    try:  # the same start time, but another user's: never one of ours to signal
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except FileNotFoundError:
        return False


def started_at(pid: int) -> float:
    """pid's start time (seconds since the epoch); OSError/ValueError without /proc."""
    return _stat(pid)[0]


def _stat(pid: int) -> tuple[float, bytes]:
    """(start time, state letter) of pid from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]


def _boot_time() -> float:
    with open("/proc/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")
