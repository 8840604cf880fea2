"""Runs the chosen checks against one target; a crashing check is reported, never fatal."""

from __future__ import annotations

import time

from devstack.doctor.context import Context
from devstack.doctor.model import CheckSpec, Outcome, Result


def run(checks: list[CheckSpec], ctx: Context) -> list[Result]:
    results = []
    for spec in checks:
        started = time.perf_counter()
        try:
            outcome = spec.run(ctx)
        except Exception as exc:  # a bug in one check must not hide the others' findings
            outcome = Outcome(
                "warning",
                f"the check itself failed: {type(exc).__name__}: {exc} (a devstack bug — please report it)",
            )
        results.append(Result(spec, outcome, time.perf_counter() - started))
    return results


FAIL_LEVELS = {"error": ("error",), "warning": ("error", "warning")}


def exit_code(results: list[Result], fail_level: str = "error") -> int:
    """1 when a check ends at fail_level or worse (--fail-level error|warning)."""
    failing = FAIL_LEVELS[fail_level]
    return 1 if any(r.outcome.status in failing for r in results) else 0


def summary(results: list[Result]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0, "ok": 0, "na": 0}
    for r in results:
        counts[r.outcome.status] += 1
    return counts
