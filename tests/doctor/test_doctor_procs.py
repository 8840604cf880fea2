"""procs.crashing over a state.json written by hand (no stack): what counts as crashing."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.doctor.checks.procs import crashing
from devstack.doctor.context import Context, Target
from devstack.stack import state

pytestmark = pytest.mark.unit


def run(tmp_path: Path, crashes: dict[str, Any]) -> Any:
    me = state.ProcRecord.of(os.getpid())  # alive: stands for the supervisor and a running process
    record = state.StackState(
        status="ready", supervisor=me, processes={"worker": me}, extra={"crashes": crashes}
    )
    state.write(tmp_path, record)
    target = Target("http://127.0.0.1:1", None, managed=True, running=True, nginx_prefix=tmp_path)
    return crashing(Context(target))


def test_a_process_that_keeps_exiting_is_an_error_with_its_last_line(tmp_path: Path) -> None:
    outcome = run(tmp_path, {"rq": {"restarts": 4, "code": 127, "line": "rq: not found", "at": time.time()}})
    assert outcome.status == "error" and outcome.finding == "keeps crashing: rq (4 restarts)"
    assert outcome.evidence[0].text == "rq: 4 restarts, last exit code 127: rq: not found"
    assert "install it in the app's venv" in outcome.fix


def test_one_exit_or_gunicorn_is_not_this_checks(tmp_path: Path) -> None:
    now = time.time()
    outcome = run(tmp_path, {"rq": {"restarts": 1, "at": now}, "gunicorn": {"restarts": 9, "at": now}})
    assert outcome.status == "ok"


def test_up_and_quiet_since_is_a_warning(tmp_path: Path) -> None:
    outcome = run(
        tmp_path, {"worker": {"restarts": 3, "code": 1, "line": "no redis", "at": time.time() - 600}}
    )
    assert outcome.status == "warning" and "up for over 60 s now: worker (3 restarts)" in outcome.finding


def test_not_a_managed_stack_is_na(tmp_path: Path) -> None:
    assert crashing(Context(Target("http://127.0.0.1:1", None))).status == "na"
