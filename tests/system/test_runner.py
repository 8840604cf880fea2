"""devstack/system/runner.py, the door for short-lived commands, and callers handed a fake runner.

The unit tests start no process: a missing binary is found missing before any spawn, and the
spawn itself is a fake. One test at the end runs real commands (not in the unit tier)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from devstack.backends.local import nginx_test
from devstack.doctor import nginxconf
from devstack.doctor.procinfo import Gunicorn
from devstack.project import config as config_mod
from devstack.system import runner
from devstack.system.runner import Completed
from tests.support.stack import make_project

unit = pytest.mark.unit


def no_spawn(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise AssertionError("nothing may be spawned for a missing binary")


class FakeRunner:
    """Answers each call with the next scripted Completed and records the argv."""

    def __init__(self, *answers: Completed) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: str | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Completed:
        self.calls.append(list(argv))
        return self.answers.pop(0)


@unit
@pytest.mark.parametrize(
    ("argv0", "env", "why"),
    [
        ("devstack-no-such-tool", None, "devstack-no-such-tool: command not found (not on PATH)"),
        ("/nowhere/bin/nginx", None, "/nowhere/bin/nginx: command not found (no executable file there)"),
        ("sh", {"PATH": ""}, "sh: command not found (PATH is empty)"),
    ],
)
def test_a_missing_binary_is_code_127_and_one_line(argv0: str, env: dict[str, str] | None, why: str) -> None:
    done = runner.run([argv0, "-t"], timeout=5, env=env, spawn=no_spawn)
    assert (done.code, done.out, done.err) == (runner.NOT_FOUND, "", why)
    assert not done.ok


@unit
def test_a_timeout_is_code_124_naming_the_command() -> None:
    def slow(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    done = runner.run(["sh", "-c", "sleep 60"], timeout=1.5, spawn=slow)
    assert (done.code, done.err) == (runner.TIMED_OUT, "sh: no answer within 1.5 s (stopped)")


@unit
def test_a_binary_that_cannot_run_is_code_126(tmp_path: Path) -> None:
    def refused(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise PermissionError(13, "Permission denied")

    done = runner.run(["sh"], timeout=5, spawn=refused)
    assert (done.code, done.err) == (runner.CANNOT_EXECUTE, "sh: cannot run: Permission denied")
    gone = tmp_path / "gone"
    done = runner.run(["sh"], timeout=5, cwd=gone, spawn=refused)
    assert done.err == f"sh: cannot run in {gone}: Permission denied"


@unit
def test_the_spawn_gets_text_capture_and_stdin_closed_unless_input_is_given() -> None:
    seen: list[dict[str, Any]] = []

    def spawn(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(kwargs)
        return subprocess.CompletedProcess(argv, 3, "out\n", "err\n")

    assert runner.run(["sh"], timeout=5, spawn=spawn) == Completed(3, "out\n", "err\n")
    runner.run(["sh"], timeout=5, input="data", env={"PATH": "/usr/bin:/bin"}, spawn=spawn)
    assert seen[0]["stdin"] == subprocess.DEVNULL and seen[0]["input"] is None
    assert seen[1]["stdin"] is None and seen[1]["input"] == "data"
    assert seen[1]["env"] == {"PATH": "/usr/bin:/bin"} and seen[0]["env"] is None
    assert all(k["text"] and k["capture_output"] and k["check"] is False for k in seen)


@unit
@pytest.mark.parametrize(
    ("err", "first"),
    [
        ('nginx: [warn] low\nnginx: [emerg] unknown directive "x"\n', 'nginx: [emerg] unknown directive "x"'),
        ("  something odd  \nmore\n", "something odd"),
        ("", "no output"),
    ],
)
def test_first_error_prefers_the_marked_line(err: str, first: str) -> None:
    assert Completed(1, "", err).first_error("[emerg]", "[crit]") == first


@unit
def test_nginx_test_through_a_fake_runner(tmp_path: Path) -> None:
    config = config_mod.load(make_project(tmp_path).config_path)
    fake = FakeRunner(
        Completed(0, "", ""),
        Completed(1, "", "nginx: [warn] x\nnginx: [emerg] bind() failed\n"),
        Completed(127, "", "nginx: command not found (not on PATH)"),
    )
    assert nginx_test("nginx", config, run=fake) == ""
    assert nginx_test("nginx", config, "candidate.conf", run=fake) == "nginx: [emerg] bind() failed"
    assert nginx_test("nginx", config, run=fake) == "nginx: command not found (not on PATH)"
    state_dir = str(config.state_dir.resolve())
    assert fake.calls[1] == ["nginx", "-p", state_dir, "-c", "candidate.conf", "-e", "stderr", "-t", "-q"]


@unit
def test_gunicorn_version_and_imports_through_a_fake_runner() -> None:
    info = Gunicorn(pid=1, cmdline=["gunicorn"], exe="/venv/bin/python")
    fake = FakeRunner(
        Completed(0, "23.0.0\n", ""),
        Completed(1, "", "ModuleNotFoundError: No module named 'gunicorn'"),
        Completed(runner.TIMED_OUT, "", "python: no answer within 20 s (stopped)"),
        Completed(0, "", ""),
        Completed(1, "", "ModuleNotFoundError"),
    )
    assert info.version(run=fake) == (23, 0, 0)
    assert info.version(run=fake) is None
    assert info.version(run=fake) is None
    assert info.can_import("gevent", run=fake) is True
    assert info.can_import("eventlet", run=fake) is False
    assert fake.calls[3] == ["/venv/bin/python", "-c", "import gevent"]
    assert Gunicorn(pid=1, cmdline=[]).can_import("gevent", run=FakeRunner()) is False  # no exe


@unit
def test_nginx_conf_falls_back_to_the_files_with_the_reason(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp { server { listen 8080; } }\n")
    fake = FakeRunner(Completed(runner.NOT_FOUND, "", "nginx: command not found (not on PATH)"))
    loaded = nginxconf.load(conf, "nginx", run=fake)
    assert (loaded.source, loaded.note) == ("files", "nginx: command not found (not on PATH)")
    assert fake.calls == [["nginx", "-T", "-c", str(conf.resolve()), "-e", "stderr"]]


def test_real_commands_through_the_runner(tmp_path: Path) -> None:
    assert runner.run(["true"], timeout=30) == Completed(0, "", "")
    script = "cat; echo oops >&2; pwd; exit 3"
    done = runner.run(["sh", "-c", script], timeout=30, input="in\n", cwd=tmp_path)
    assert done == Completed(3, f"in\n{tmp_path}\n", "oops\n")
    assert runner.run(["sh", "-c", "sleep 30"], timeout=0.3).code == runner.TIMED_OUT
    assert runner.run([str(tmp_path / "missing")], timeout=30).code == runner.NOT_FOUND
