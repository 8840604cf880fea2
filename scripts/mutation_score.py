"""The mutation score per module from mutmut's results (mutants/**/*.py.meta).

A mutant is killed when a test failed on it (or it timed out), or caught when mypy rejects it
(tests/test_lint.py runs mypy --strict in CI, so it could not land); "survived" and "no tests"
count against the score. Mutants not run (a sampled run: .ci/mutation's MUTATION_SAMPLE) are
left out and said. Run from the repository root after `mutmut run` (make mutation, .ci/mutation).

With --min, exit 1 when a module scores below PCT: for a full run, its score; for a sampled one,
the upper end of the score's 95 % interval (the sample shows it is below, not just might be).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

TEST_KILLED = {1, 3, 24, -24, 36, 152, 255}  # a test failed, pytest error, timeouts
TYPE_CAUGHT = 37
SKIPPED = 34
# mypy errors that mutmut's own generated code causes, not the mutant: not a catch.
NOT_A_CATCH = ("already defined",)


@dataclass
class Score:
    by_tests: int = 0
    by_mypy: int = 0
    survived: int = 0
    pending: int = 0  # not run (sampled out)

    @property
    def tested(self) -> int:
        return self.by_tests + self.by_mypy + self.survived

    @property
    def killed(self) -> int:
        return self.by_tests + self.by_mypy

    def percent(self) -> float:
        return 100.0 * self.killed / self.tested if self.tested else 0.0

    def interval(self) -> tuple[float, float]:
        """The score's 95 % Wilson interval, in percent."""
        n = self.tested
        if not n:
            return 0.0, 100.0
        z, p = 1.96, self.killed / n
        centre = p + z * z / (2 * n)
        spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        scale = 100.0 / (1 + z * z / n)
        return (centre - spread) * scale, (centre + spread) * scale

    def add(self, other: Score) -> None:
        self.by_tests += other.by_tests
        self.by_mypy += other.by_mypy
        self.survived += other.survived
        self.pending += other.pending


def read(meta: Path) -> Score:
    data = json.loads(meta.read_text())
    errors: dict[str, str] = data.get("type_check_error_by_key", {})
    score = Score()
    for name, code in data["exit_code_by_key"].items():
        if code is None:
            score.pending += 1
        elif code == SKIPPED:
            continue
        elif code == TYPE_CAUGHT and not any(text in errors.get(name, "") for text in NOT_A_CATCH):
            score.by_mypy += 1
        elif code in TEST_KILLED:
            score.by_tests += 1
        else:
            score.survived += 1
    return score


def scores(root: Path) -> dict[str, Score]:
    return {
        meta.relative_to(root).as_posix().removesuffix(".meta"): read(meta)
        for meta in sorted(root.glob("**/*.py.meta"))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mutants", default="mutants", help="mutmut's folder (default: mutants)")
    parser.add_argument("--min", type=float, default=0.0, help="fail below this percentage")
    args = parser.parse_args(argv)
    root = Path(args.mutants)
    results = scores(root)
    if not any(score.tested for score in results.values()):
        print(f"no mutmut results under {root}/: run `mutmut run` first", file=sys.stderr)
        return 1
    sampled = any(score.pending for score in results.values())
    print(
        f"{'module':34} {'tests':>6} {'mypy':>6} {'lived':>6} {'score':>8}"
        + ("  95 % interval" if sampled else "")
    )
    low, total = [], Score()
    for module, score in results.items():
        total.add(score)
        print(row(module, score, sampled))
        if score.tested and (score.interval()[1] if sampled else score.percent()) < args.min:
            low.append(module)
    print(row("mutation score", total, sampled))
    if sampled:
        print(f"(a sample: {total.tested} of {total.tested + total.pending} mutants run)")
    if low:
        print(f"below {args.min:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


def row(label: str, score: Score, sampled: bool) -> str:
    line = f"{label:34} {score.by_tests:6} {score.by_mypy:6} {score.survived:6} {score.percent():7.1f} %"
    if sampled:
        lo, hi = score.interval()
        line += f"  {lo:5.1f} .. {hi:5.1f} %" if score.tested else "  (none run)"
    return line


if __name__ == "__main__":
    sys.exit(main())
