"""Run gixy-ng on the corpus's rendered nginx.conf files, next to doctor's expected findings.

    python -m tests.doctor.corpus.gixy_compare [PATH-TO-gixy]

gixy reads config only (no probes, no gunicorn); this prints, per case, what it reports and
which of doctor's expected findings it covers. Not a test: gixy-ng is not a dependency.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.doctor.corpus import harness

# doctor check -> the gixy plugin that reports the same fault, where there is one
SAME_FAULT = {"nginx.alias-sibling": "alias_traversal", "nginx.alias-traversal": "alias_traversal"}


def main() -> int:
    gixy = sys.argv[1] if len(sys.argv) > 1 else shutil.which("gixy") or "gixy"
    covered = total = 0
    reported: dict[str, int] = {}
    for case in harness.cases():
        with tempfile.TemporaryDirectory() as tmp:
            site = harness.render(case, Path(tmp))
            out = subprocess.run(
                [gixy, "--format", "json", str(site.conf)], capture_output=True, text=True, timeout=120
            )
        try:
            issues = json.loads(out.stdout or "[]")
        except ValueError:
            print(f"{case.name}: gixy failed: {out.stderr.strip()[:200]}")
            continue
        plugins = sorted({i.get("plugin", "?") for i in issues})
        for p in plugins:
            reported[p] = reported.get(p, 0) + 1
        hits = [k for k in case.expect if SAME_FAULT.get(k) in plugins]
        covered += len(hits)
        total += len(case.expect)
        print(f"{case.name:26} gixy: {', '.join(plugins) or '-':60} covers {hits or '-'}")
    print(f"\ngixy-ng covers {covered}/{total} of doctor's expected findings; plugins reported: {reported}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
