"""The mutation score per module from mutmut's results (mutants/**/*.py.meta): killed / tested.

A mutant counts as killed when a test failed on it (or it timed out); "no tests" and
"survived" count against the score. Run from the repository root after `mutmut run`
(`make mutation`, `.ci/mutation`). Exit 1 when a module is below --min (default: report only).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 37, 152, 255}  # killed, pytest error, timeouts, caught by type check


def scores(root: Path) -> dict[str, tuple[int, int, int]]:
    """module -> (killed, tested, not yet run)."""
    out: dict[str, tuple[int, int, int]] = {}
    for meta in sorted(root.glob("**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"].values()
        tested = [code for code in codes if code is not None and code != 34]  # 34: skipped
        killed = sum(1 for code in tested if code in KILLED)
        module = meta.relative_to(root).as_posix().removesuffix(".meta")
        out[module] = (killed, len(tested), sum(1 for code in codes if code is None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mutants", default="mutants", help="mutmut's folder (default: mutants)")
    parser.add_argument("--min", type=float, default=0.0, help="fail below this percentage")
    args = parser.parse_args(argv)
    results = scores(Path(args.mutants))
    if not results:
        print(f"no mutmut results under {args.mutants}/: run `mutmut run` first", file=sys.stderr)
        return 1
    low = []
    all_killed = all_tested = 0
    for module, (killed, tested, pending) in results.items():
        pct = 100.0 * killed / tested if tested else 0.0
        more = f", {pending} not run" if pending else ""
        print(f"{module:34} {killed:5}/{tested:<5} killed  {pct:5.1f} %{more}")
        all_killed, all_tested = all_killed + killed, all_tested + tested
        if pct < args.min:
            low.append(module)
    total = 100.0 * all_killed / all_tested if all_tested else 0.0
    print(f"{'mutation score':34} {all_killed:5}/{all_tested:<5} killed  {total:5.1f} %")
    if low:
        print(f"below {args.min:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
