"""doctor on 27 nginx (+gunicorn) set-ups published by others (tests/doctor/corpus): each run
for real, alone and next to an unrelated gunicorn. Expected findings were written before the
first run; recall and false alarms are printed (pytest -s) and held to the acceptance bar."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.doctor.corpus import fixes, harness
from tests.support.doctor import gunicorn, nginx_bin, statuses
from tests.support.stack import EXAMPLE, free_ports

pytestmark = pytest.mark.needs_nginx
CASES = harness.cases()
RESULTS: dict[str, dict[str, Any]] = {}


@contextmanager
def unrelated(tmp: Path) -> Iterator[None]:
    """Another project's gunicorn on this machine (3 sync workers, so it would be a finding if
    doctor took it for the stack's)."""
    root = tmp / "other"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    with gunicorn(root, free_ports(1)[0], "-w", "3", log=tmp / "unrelated.log"):
        yield


@pytest.mark.unit
def test_corpus_has_provenance_and_expectations() -> None:
    assert len(CASES) >= 27
    for case in CASES:
        assert case.meta.get("source"), case.name
        assert case.meta.get("expect"), case.name
        assert all(v in harness.FINDING for v in case.expect.values()), case.name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: harness.Case, tmp_path: Path) -> None:
    with harness.prepared(case) as site:
        with harness.launched(site, case, list(case.meta.get("gunicorn", []))):
            report = harness.run_doctor(site, case)
            with unrelated(tmp_path):
                again = harness.run_doctor(site, case)
        got = harness.findings(report)
        missed = {k: v for k, v in case.expect.items() if got.get(k) != v}
        extra = {k: v for k, v in got.items() if k not in case.expect}
        RESULTS[case.name] = {"expected": len(case.expect), "missed": missed, "extra": extra}
        crashed = [c["id"] for c in report["checks"] if "the check itself failed" in c["finding"]]
        assert not crashed, [c for c in report["checks"] if c["id"] in crashed]
        assert not missed, {k: next(c for c in report["checks"] if c["id"] == k) for k in missed}
        assert statuses(again) == statuses(report), "an unrelated gunicorn changed the verdict"
        assert report["exit_code"] == (1 if "error" in got.values() else 0)
        fixed = apply_fixes(case, site, report)
    RESULTS[case.name]["fixed"] = fixed


def apply_fixes(case: harness.Case, site: harness.Site, report: dict[str, Any]) -> int:
    """Apply each finding's fix as its text says, re-run, and require that check to pass;
    rounds repeat while a fix reveals the next fault (a new check, never the same one)."""
    port = int(site.values["@LISTEN@"].rsplit(":", 1)[1])
    args = list(case.meta.get("gunicorn", []))
    done: set[str] = set()
    for _ in range(3):
        open_ = {c["id"]: c for c in report["checks"] if c["status"] in harness.FINDING}
        if not open_:
            return len(done)
        assert not (set(open_) & done), {k: open_[k] for k in set(open_) & done}  # a fix did not work
        unfixable = set(open_) - set(fixes.FIXERS)
        assert not unfixable, {k: open_[k] for k in unfixable}
        found = {
            k: {
                "fix": c.get("fix", ""),
                "static_uri": "/static/css/app.css",
                "static": site.static,
                "project": site.app,
            }
            for k, c in open_.items()
        }
        if "net.tls-trust" in open_:
            # its fix is for this run of doctor: --cacert with the local CA, else --insecure
            fix = open_["net.tls-trust"].get("fix", "")
            site.doctor_args += (
                ["--cacert", str(site.ca)] if site.ca and "--cacert" in fix else ["--insecure"]
            )
        text, args = fixes.apply(site.conf, args, port, found, nginx_bin())
        site.conf.write_text(text)
        done |= set(open_)
        with harness.launched(site, case, args):
            report = harness.run_doctor(site, case)
    assert not [c for c in report["checks"] if c["status"] in harness.FINDING], report
    return len(done)


def test_totals() -> None:
    """Recall and false alarms over the whole corpus (after the cases ran)."""
    if len(RESULTS) < len(CASES):
        pytest.skip("run with the cases")
    expected = sum(r["expected"] for r in RESULTS.values())
    missed = sum(len(r["missed"]) for r in RESULTS.values())
    alarms = {name: r["extra"] for name, r in RESULTS.items() if r["extra"]}
    fixed = sum(r.get("fixed", 0) for r in RESULTS.values())
    print(
        f"\ncorpus: {len(RESULTS)} cases, recall {expected - missed}/{expected}, "
        f"false alarms {alarms}, fixes applied and passing {fixed}"
    )
    assert missed == 0
    assert sum(len(a) for a in alarms.values()) <= 1, alarms
