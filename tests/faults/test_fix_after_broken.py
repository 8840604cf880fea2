"""A fix saved after a broken import is served within a few seconds, whatever state gunicorn is in.

The soak (issue #29 item 8) missed one: the fix reached a gunicorn master that was still alive
but could not act on the reload (halting after "Worker failed to boot", or booting before its
signal handlers), so the change was spent on a HUP nobody handled, and gunicorn came back only
on its backoff retry, by then 30 s away. Here the backoff is first grown to 8 s by a broken
import left in place (its retries fail), then the fix is saved at the worst moment of the next
retry: as its master boots the broken code, or as it halts after its worker failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devstack.stack import probes
from tests.support.faults import log_text, notes, recorded, serving
from tests.support.stack import Project, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]

FEW_SECONDS = 5.0  # the retry it used to wait for was 8 s away
BROKEN = 'GREETING = "oops" +\n'


def _boot_failures(project: Project) -> int:
    return log_text(project, "gunicorn").count("Reason: Worker failed to boot.")


def _master_booting(project: Project, old_pid: int | None) -> Callable[[], bool]:
    """The next retry's master has been spawned (state.json names a new pid)."""
    return lambda: recorded(project, "gunicorn") not in (None, old_pid)


def _master_halting(project: Project, old_pid: int | None) -> Callable[[], bool]:
    """The next retry's master has seen its worker fail to boot and is shutting down."""

    def halting() -> bool:
        pid = recorded(project, "gunicorn")
        return pid not in (None, old_pid) and f"[{pid}] [ERROR] Worker (pid:" in log_text(project, "gunicorn")

    return halting


@pytest.mark.parametrize("moment", [_master_booting, _master_halting], ids=["booting", "halting"])
def test_a_fix_saved_during_a_backoff_retry_is_served_at_once(
    stack: Project, moment: Callable[[Project, int | None], Callable[[], bool]]
) -> None:
    app = stack.root / "app.py"
    good = app.read_text()
    assert 'GREETING = "Hello from devstack"' in good
    app.write_text(good.replace('GREETING = "Hello from devstack"', BROKEN.strip()))
    # Left broken, every retry fails: 0.5, 1, 2, 4 s, then the next one is 8 s away.
    assert wait_for(lambda: any("next start in 8.0 s" in n for n in notes(stack, "gunicorn")), 60), notes(
        stack, "gunicorn"
    )
    assert not serving(stack)
    failures = _boot_failures(stack)
    old_pid = recorded(stack, "gunicorn")
    arrived = moment(stack, old_pid)
    assert wait_for(arrived, timeout=20, interval=0.005), notes(stack, "gunicorn")

    fixed = good.replace('GREETING = "Hello from devstack"', 'GREETING = "fixed"')
    app.write_text(fixed)
    saved = time.monotonic()
    served = wait_for(lambda: b"fixed" in _health(stack), timeout=15, interval=0.02)
    took = time.monotonic() - saved
    said = "\n".join(notes(stack, "gunicorn")[-8:])
    assert served and took < FEW_SECONDS, f"the fix was served after {took:.1f} s:\n{said}"
    # The retry really was booting the broken code when the fix came (the case under test).
    assert _boot_failures(stack) > failures or "killed by SIGHUP" in said, said


def _health(project: Project) -> bytes:
    try:
        return probes.http_get(project.url + "/health", timeout=2.0).body
    except OSError:
        return b""
