"""The soak, short: ~1.5 minutes of the scripted day (benchmarks/soak.py) must meet every goal:
supervisor RSS growth <= 5 MB, fds and threads flat, no log line lost inside the retention,
no STALE, every edit served, every kill recovered."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.stack import REPO, cli_env

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def test_a_short_working_day_meets_every_goal() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--minutes", "1.5", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(),
        check=False,
    )
    table = result.stdout + result.stderr
    assert result.returncode == 0, table
    assert "all goals met" in result.stdout, table
    for figure in ("kill -9", "code edits", "static edits", "suspends", "devstack.toml edits"):
        assert figure in result.stdout, table
