"""`python -m devstack` (and the `devstack` script) runs the plain everyday commands without
importing typer, pydantic or rich: their start-up is most of what they cost (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Runs the entry point, then says which of the slow libraries got imported (main() leaves
# through os._exit on its fast path, typer's path through SystemExit: both are caught).
PROBE = (
    "import atexit, os, sys\n"
    "slow = {'typer', 'pydantic', 'rich'}\n"
    "def say(*_):\n"
    "    print('IMPORTED', *sorted(slow & {m.split('.')[0] for m in sys.modules}), flush=True)\n"
    "leave = os._exit\n"
    "os._exit = lambda code: (say(), leave(code))\n"
    "atexit.register(say)\n"
    "from devstack.__main__ import main\n"
    "main()\n"
)


def imported(argv: list[str], cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("IMPORTED")]
    assert lines, done.stderr
    return lines[-1].removeprefix("IMPORTED").strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "devstack.toml").write_text('[app]\nwsgi = "app:app"\n')
    (tmp_path / "app.py").write_text("")
    return tmp_path


@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["down"], ["logs", "-n", "20"]])
def test_everyday_commands_import_no_slow_library(argv: list[str], project: Path) -> None:
    assert imported(argv, project) == ""


def test_anything_else_goes_through_typer(project: Path) -> None:
    assert "typer" in imported(["--version"], project).split()
