"""`up --detach`'s exit code when its stack did not become ready (backends/detached.py)."""

from __future__ import annotations

import pytest

from devstack.backends.detached import not_ready_code
from devstack.errors import Exit

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("ended", "code"),
    [
        ([], Exit.NOT_READY),  # still running at the deadline
        ([0], Exit.NOT_READY),  # stopped (a `down` meanwhile) before it was ready
        ([-9], Exit.NOT_READY),  # killed by a signal
        ([1], Exit.ERROR),  # its own error (a rejected nginx.conf): as in the foreground
        ([3], Exit.PORT_TAKEN),
        ([4], Exit.NOT_READY),
        ([77], Exit.NOT_READY),  # no code of ours
    ],
)
def test_the_daemons_own_error_code_is_kept(ended: list[int], code: Exit) -> None:
    assert not_ready_code(ended) is code
