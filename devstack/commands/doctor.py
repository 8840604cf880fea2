"""`devstack doctor`: diagnose stale static files and the classic faults of this stack."""

from __future__ import annotations

from devstack import console


def run() -> int:
    console.err().print("devstack doctor: no checks are registered yet")
    return 1
