"""The browser rung of the hash ladder: what the open tabs apply, asked of the tabs themselves.

Only for devstack's own stack with live reload on and a tab open: each tab hashes (sha256, in
the page) the stylesheets it applies; doctor compares them with the disk.
"""

from __future__ import annotations

from devstack.doctor.checks import static as _static  # noqa: F401 -- the ladder first, then this rung
from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check
from devstack.live.query import tabs_report
from devstack.stack import probes


@check(
    "static.browser",
    "The open browser tabs apply the stylesheets on disk",
    "error",
    "reload the tab named in the finding; if it stays stale, the cause named there (a service worker, "
    "a cached copy) answers instead of nginx",
    refs=("doctor-catalog: hash ladder",),
)
def browser(ctx: Context) -> Outcome:
    t = ctx.t
    if not t.managed or t.config_path is None or t.static_dir is None:
        return na("only for devstack's own stack (live reload asks its open tabs)")
    report = tabs_report(t.config_path.parent / ".devstack")
    if report is None:
        return na("live reload is not running (the stack is down, or server.live_reload = false)")
    if not report.get("tabs"):
        return na(f"no browser tab is open on {t.public_url}: open one to add the browser rung")
    evidence: list[Evidence] = []
    stale: list[str] = []
    checked = 0
    for answer in report.get("answers", []):
        for sheet in answer.get("sheets", []):
            path = str(sheet.get("path", ""))
            if not path.startswith(t.static_prefix):
                continue
            file = t.static_dir / path[len(t.static_prefix) :]
            if not file.is_file():
                continue
            checked += 1
            disk, sha = probes.sha256_file(file), str(sheet.get("sha") or "")
            where = f"tab {answer.get('tab')} ({answer.get('path')})"
            evidence.append(Evidence("probe", f"{path}: tab {sha[:12] or '-'}, disk {disk[:12]}", where))
            if sha != disk:
                stale.append(f"{where} applies {path} as {sha[:12] or '-'} != disk {disk[:12]}")
            elif sheet.get("same") is False:
                stale.append(f"{where}: the rules it applies for {path} differ from its cached copy")
    tabs = int(report.get("tabs") or 0)
    if stale:
        return Outcome("error", "; ".join(stale[:3]), evidence)
    if not checked:
        return na(f"{tabs} tab(s) open, none applies a stylesheet from {t.static_prefix}")
    return ok(f"{tabs} tab(s): every stylesheet they apply ({checked}) matches the disk", *evidence)
