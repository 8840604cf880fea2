"""The code stays typed and lint-clean: mypy --strict and ruff, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.stack import REPO


@pytest.mark.parametrize(
    "argv",
    [["check", "--output-format", "concise", "."], ["format", "--check", "."]],
    ids=["check", "format"],
)
def test_ruff_clean(argv: list[str]) -> None:
    # `python -m ruff`: the test extras install it; a PATH without the venv's bin must not skip this.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *argv], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
