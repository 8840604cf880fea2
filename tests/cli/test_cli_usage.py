"""Usage errors: the usage text and exit 2, never "internal error", never a crash file.

In-process through run_cli (the unit tier) and once through the installed console script.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devstack.cli import app as cli
from tests.support.cli import devstack, mock_env
from tests.support.require import require
from tests.support.stack import make_project

USAGE_ERRORS = [
    pytest.param([], "Usage: devstack", id="bare"),
    pytest.param(["--nope"], "No such option: --nope", id="unknown-root-option"),
    pytest.param(["logs", "--no-colr"], "No such option: --no-colr", id="mistyped-option"),
    pytest.param(["logs", "-n"], "requires an argument", id="missing-value"),
    pytest.param(["up", "--color", "purple"], "Invalid value for '--color'", id="bad-choice"),
    pytest.param(["status", "--no-color"], "No such option: --no-color", id="no-color-where-no-color"),
    pytest.param(["frobnicate"], "No such command", id="unknown-command"),
]


def crash_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "devstack-crash-*.log")))


@pytest.mark.unit
@pytest.mark.parametrize(("argv", "needle"), USAGE_ERRORS)
def test_usage_error_in_process(argv: list[str], needle: str) -> None:
    before = crash_files()
    result = devstack(*argv)
    assert result.exit == 2
    assert needle in result.err and result.out == "", result
    assert "internal error" not in result.err
    assert crash_files() == before


@pytest.mark.unit
def test_run_cli_without_an_env_uses_the_process_streams(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run_cli(["--nope"]) == 2
    assert "No such option: --nope" in capsys.readouterr().err


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["logs", "--no-color", "-f"], ["logs", "--color=never", "-f"]),
        (["up", "-c", "x", "--no-color"], ["up", "-c", "x", "--color=never"]),
        (["doctor", "--", "--no-color"], ["doctor", "--", "--no-color"]),  # after --: an argument
        (["status", "--no-color"], ["status", "--no-color"]),  # no --color there: typer says so
    ],
)
def test_no_color_alias(argv: list[str], expected: list[str]) -> None:
    assert cli.with_aliases(argv) == expected


@pytest.mark.unit
def test_version_and_help_exit_0() -> None:
    version = devstack("--version")
    assert (version.exit, version.err) == (0, "") and version.out.startswith("devstack ")
    helped = devstack("logs", "--help")
    assert helped.exit == 0 and "(--no-color: never)" in " ".join(helped.out.split())


@pytest.mark.unit
def test_json_goes_to_the_envs_stdout(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    status = devstack("status", "--json", cwd=project.root)
    assert status.exit == 1 and status.err == ""  # 1: not running
    assert json.loads(status.out)["status"] == "stopped"
    listed = devstack("doctor", "--list-checks", cwd=project.root)
    assert listed.exit == 0 and "static.ladder" in listed.out


@pytest.mark.unit
@pytest.mark.parametrize(
    ("tty", "no_color", "colored"), [(True, "", True), (True, "1", False), (False, "", False)]
)
def test_color_follows_the_envs_terminal_and_environ(
    tmp_path: Path, tty: bool, no_color: str, colored: bool
) -> None:
    project = make_project(tmp_path)
    env = mock_env(project.root, {"NO_COLOR": no_color, "TERM": "xterm"}, tty=tty)
    result = devstack("status", env=env)
    assert result.out.startswith("\x1b[31mstopped" if colored else "stopped"), result.out
    assert ("\x1b[31m" in result.out) is colored


def test_usage_error_through_the_console_script(tmp_path: Path) -> None:
    beside = Path(sys.executable).parent / "devstack"  # where pip put it for this interpreter
    script = str(beside) if beside.is_file() else shutil.which("devstack")
    require(script, "the devstack console script is not installed (pip install -e .)")
    assert script is not None
    before = crash_files()
    result = subprocess.run(
        [script, "logs", "--no-colr"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "Usage: devstack logs" in result.stderr and "No such option" in result.stderr
    assert "internal error" not in result.stderr + result.stdout
    assert crash_files() == before


def test_shell_completion_through_the_console_script(tmp_path: Path) -> None:
    beside = Path(sys.executable).parent / "devstack"
    script = str(beside) if beside.is_file() else shutil.which("devstack")
    require(script, "the devstack console script is not installed (pip install -e .)")
    assert script is not None
    asked = {"_DEVSTACK_COMPLETE": "complete_bash", "COMP_WORDS": "devstack lo", "COMP_CWORD": "1"}
    env = {**os.environ, **asked}
    result = subprocess.run([script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.split() == ["logs"], result
    shown = subprocess.run([script, "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert "_devstack_completion()" in shown.stdout and "_DEVSTACK_COMPLETE" in shown.stdout, shown.stdout
