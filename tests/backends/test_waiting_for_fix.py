"""An app broken when `up` starts: nginx runs, the error is shown, the status says "waiting",
and the stack is ready on the first save that fixes it (foreground and --detach alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.backends import foreground
from devstack.stack import probes
from devstack.stack.readiness import ReadyReport
from tests.support.faults import start_foreground, wait_status
from tests.support.stack import Project, wait_for

BREAKS = {
    "import-error": ("\nimport flask_nonexistent_extension\n", "flask_nonexistent_extension"),
    "syntax-error": ("\ndef half_written(:\n", "SyntaxError"),
}


def break_app(project: Project, how: str) -> tuple[Path, str]:
    app_py = project.root / "app.py"
    good = app_py.read_text()
    app_py.write_text(good + BREAKS[how][0])
    return app_py, good


@pytest.mark.needs_nginx
@pytest.mark.parametrize("how", sorted(BREAKS))
def test_detached_waits_for_the_fix(project: Project, how: str) -> None:
    app_py, good = break_app(project, how)
    result = project.cli("up", "--detach")
    assert result.returncode == 0, result.stderr
    assert "waiting for a fix" in result.stderr and BREAKS[how][1] in result.stderr, result.stderr
    status = project.cli("status")
    assert status.stdout.startswith("waiting for a fix"), status.stdout
    assert probes.http_get(project.url + "/").status == 502  # nginx answers; the app is not there
    app_py.write_text(good)  # the save that fixes it
    assert wait_status(project, "ready", timeout=30), project.state()
    assert probes.http_get(project.url + "/health").status == 200
    assert project.cli("status").stdout.startswith("running")


@pytest.mark.needs_nginx
def test_foreground_waits_for_the_fix_and_says_it_once(project: Project) -> None:
    app_py, good = break_app(project, "import-error")
    fg = start_foreground(project)
    assert wait_for(lambda: "waiting for a fix" in fg.output, timeout=30), fg.output
    assert wait_status(project, "waiting"), project.state()
    app_py.write_text(good.replace("Hello from devstack", "Hello, fixed"))
    assert wait_for(lambda: "ready in" in fg.output, timeout=30), fg.output
    assert b"Hello, fixed" in probes.http_get(project.url + "/").body
    # The backoff retries fail the same way before the fix: the error is said once, not per retry.
    assert fg.output.count("waiting for a fix:") == 1, fg.output
    fg.proc.terminate()
    assert fg.wait() == 0, fg.output


# -- the waiting loop itself, with a fake stack and clock (unit tier) --------------------------


class FakeSupervisor:
    stop_requested = False

    def __init__(self) -> None:
        self.calls: list[object] = []

    def call_soon(self, fn: object) -> None:
        fn()  # type: ignore[operator]


class FakeStack:
    def __init__(self, reports: list[ReadyReport], restarts: list[bool]) -> None:
        self.reports, self.restarts = reports, restarts
        self.supervisor = FakeSupervisor()

    def wait_ready(self, started: float) -> ReadyReport:
        return self.reports.pop(0)

    def wait_app_started(self, deadline: float | None) -> bool:
        return self.restarts.pop(0)


def broken(error: str) -> ReadyReport:
    return ReadyReport(False, 0.1, [], error, app_broken=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.unit
def test_waits_through_errors_saying_each_new_one_once() -> None:
    ok = ReadyReport(True, 0.2, ["GET / -> 200"])
    stack = FakeStack([broken("E1"), broken("E1"), broken("E2"), ok], [True, True, True])
    said: list[str] = []
    report = foreground.wait_until_ready(stack, 100.0, None, lambda r: said.append(r.error), Clock())  # type: ignore[arg-type]
    assert report.ok and said == ["E1", "E2"]


@pytest.mark.unit
def test_timeout_ends_the_wait_with_the_apps_error() -> None:
    stack = FakeStack([broken("E1"), broken("E1"), broken("E1")], [True, True])
    report = foreground.wait_until_ready(stack, 100.0, 2.5, lambda r: None, Clock())  # type: ignore[arg-type]
    assert not report.ok and report.error == "E1"


@pytest.mark.unit
def test_other_failures_are_not_waited_for() -> None:
    nginx_down = ReadyReport(False, 30.0, [], "not ready after 30 s: GET / -> 502")
    stack = FakeStack([nginx_down], [])
    said: list[str] = []
    report = foreground.wait_until_ready(stack, 100.0, None, lambda r: said.append(r.error), Clock())  # type: ignore[arg-type]
    assert report is nginx_down and said == []


@pytest.mark.unit
def test_a_stop_while_waiting_ends_it() -> None:
    stack = FakeStack([broken("E1")], [False])  # wait_app_started: False = stopping
    report = foreground.wait_until_ready(stack, 100.0, None, lambda r: None, Clock())  # type: ignore[arg-type]
    assert not report.ok
