"""tests/support/require.py: a missing prerequisite skips locally and fails under CI=true."""

from __future__ import annotations

import pytest

from tests.support.require import have, needs, require

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("ci", ["", "false", "1"])
def test_missing_skips_locally_saying_why(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="tmux is not installed"):
        require(False, "tmux is not installed")
    require(True, "never said")


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_missing_fails_in_ci_with_one_line(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as failed:
        require(False, "tmux is not installed")
    assert str(failed.value) == "missing prerequisite (CI=true: a failure, not a skip): tmux is not installed"
    assert "\n" not in str(failed.value)
    require(True, "never said")


def test_have_honours_simulated_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVSTACK_TEST_MISSING", raising=False)
    assert have("sh")
    monkeypatch.setenv("DEVSTACK_TEST_MISSING", "tmux, sh")
    assert not have("sh")
    assert not have("no-such-binary-here")


def test_the_marker_carries_condition_and_why() -> None:
    mark = needs(0, "why").mark
    assert mark.name == "prerequisite" and mark.args == (False, "why")
