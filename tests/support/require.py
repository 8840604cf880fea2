"""One rule for a test whose prerequisite is missing: locally it skips and says why; in CI
(`CI=true`) it fails, with one line saying what is missing.

CI installs every prerequisite (scripts/test.sh, .ci/vm-tier), so there a skip would only hide
that a proof did not run. Every test that can lack something (a binary, root, a FUSE mount, the
VM tier's libvirt) asks here: `require(condition, why)` inside a test or fixture, or the marker
`needs(condition, why)` (checked in tests/conftest.py before the test's fixtures are set up).

DEVSTACK_TEST_MISSING=tmux,bindfs makes `have()` report those binaries absent, to see what a
machine without them gets (e.g. `CI=true DEVSTACK_TEST_MISSING=tmux pytest tests/faults/test_signals.py`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def simulated_missing() -> set[str]:
    return {name.strip() for name in os.environ.get("DEVSTACK_TEST_MISSING", "").split(",") if name.strip()}


def have(binary: str, *fallbacks: Path) -> bool:
    """The binary is on PATH (or at one of the fallback paths), and not simulated missing."""
    if binary in simulated_missing():
        return False
    return shutil.which(binary) is not None or any(path.is_file() for path in fallbacks)


def require(condition: object, why: str) -> None:
    """Nothing when condition holds; otherwise skip with `why`, or under CI fail with it."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"missing prerequisite (CI=true: a failure, not a skip): {why}", pytrace=False)
    pytest.skip(why)


def needs(condition: object, why: str) -> pytest.MarkDecorator:
    """The marker form of require(), for a whole test, class or module (pytestmark)."""
    return pytest.mark.prerequisite(bool(condition), why)


def check_marks(item: pytest.Item) -> None:
    for mark in item.iter_markers("prerequisite"):
        require(*mark.args)
