"""What a backend is: the `Stack` both local.py (this machine) and vm.py (a Vagrant VM) implement.

A command picks one and drives it the same way: prepare (cheap checks that can fail before
anything starts), start, wait_ready (stack/readiness.py's three proofs through the public URL), then
set_status as it goes and stop at the end. What each run records lives in `state` (state.json).
"""

from __future__ import annotations

from typing import Protocol

from devstack.project.config import Config
from devstack.stack.readiness import ReadyReport
from devstack.stack.state import StackState


class Stack(Protocol):
    config: Config
    state: StackState

    def prepare(self) -> None:
        """Refuse early (already running, a port taken, a missing tool); nothing is started."""
        ...

    def start(self) -> None:
        """Start every process of the stack; returns before it is ready."""
        ...

    def wait_ready(self, started: float, timeout: float = ...) -> ReadyReport:
        """Prove it ready through its public URL, or say why not, by started + timeout."""
        ...

    def set_status(self, status: str, error: str = "", ready_seconds: float | None = None) -> None:
        """starting | ready | waiting | failed | stopping | stopped, into state.json."""
        ...

    def stop(self) -> None:
        """Stop what start() started; the stack's record says stopped."""
        ...
