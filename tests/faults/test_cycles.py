"""100 `up --detach` / `down` cycles: nothing left behind, every port free, after each one."""

from __future__ import annotations

import os

import pytest

from tests.support.faults import up_down_cycle
from tests.support.stack import Project, processes_under

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]

CYCLES = int(os.environ.get("DEVSTACK_FAULT_CYCLES", "100"))


def test_up_down_cycles_leave_nothing(project: Project) -> None:
    for number in range(1, CYCLES + 1):
        cycle = up_down_cycle(project)
        assert not cycle.left, f"cycle {number}: processes left after down: {cycle.left}"
        assert not cycle.busy, f"cycle {number}: ports still taken after down: {cycle.busy}"
        stray = processes_under(project.root)
        assert not stray, f"cycle {number}: processes left under the project: {stray}"
        assert project.state().get("status") == "stopped", project.state()
