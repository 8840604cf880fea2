"""The stack's other processes (Procfile, [processes]): do they stay up?"""

from __future__ import annotations

import re
import time

from devstack.doctor.context import CHURN_LOOK, Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check
from devstack.stack import state

# A process that exits this often keeps crashing: one restart may be a hiccup.
CRASHING = 2
SETTLED = 60.0  # seconds up since the last exit: no longer "keeps crashing"


WORKER_DEATH = re.compile(r"WORKER TIMEOUT|Worker \(pid:\d+\) (?:exited|was sent)|Booting worker", re.I)
CHURN_FIX = (
    "run the app in one worker in the foreground (`gunicorn -w 1 APP`, the same flags) and read why "
    "it exits: a worker that dies after booting is the app's own crash (os._exit, a segfault in an "
    "extension, the OOM killer: `dmesg`), or --timeout killing a worker a request blocked "
    "(WORKER TIMEOUT in its log: raise --timeout, or find the blocking call)"
)


def _gunicorn_churn(ctx: Context) -> Outcome | None:
    """gunicorn's workers, looked at twice a second apart: pids that vanished were workers that
    died (the master forks new ones at once). None: no gunicorn, or its workers stayed."""
    looks = ctx.worker_looks
    g = ctx.gunicorn
    if looks is None or g is None:
        return None
    first, second = looks
    gone = [pid for pid in first if pid not in second]
    new = [pid for pid in second if pid not in first]
    if not gone:
        return None
    ev = [
        Evidence("probe", f"workers {first} then, {CHURN_LOOK:.0f} s later, {second}", f"pid {g.pid}"),
        Evidence("output", g.command[:300], f"pid {g.pid}"),
    ]
    from devstack.doctor.checks.gunicorn import _log_path, _log_tail

    log = _log_path(ctx)
    deaths = [ln.strip()[-200:] for ln in _log_tail(log) if WORKER_DEATH.search(ln)]
    ev += [Evidence("output", line, str(log)) for line in deaths[-3:]]
    if g.get("max_requests"):
        ev.append(
            Evidence("output", f"max_requests = {g.get('max_requests')}", g.sources.get("max_requests", ""))
        )
    return Outcome(
        "error",
        f"gunicorn master pid {g.pid}: its workers keep dying — {len(gone)} of {len(first)} gone and "
        f"{len(new)} new within {CHURN_LOOK:.0f} s ({', '.join(map(str, gone))} replaced by "
        f"{', '.join(map(str, new)) or 'none yet'}): requests in flight are cut, websockets drop",
        ev,
        CHURN_FIX,
    )


@check(
    "procs.crashing",
    "No supervised process keeps crashing",
    "error",
    "run the command by hand in the app's venv (`devstack logs NAME` shows its output) and fix it "
    "in the Procfile or [processes]",
    refs=("issue 25: extra processes run as if the venv were activated", "issue #26: worker churn"),
)
def crashing(ctx: Context) -> Outcome:
    if not ctx.t.managed or ctx.t.nginx_prefix is None:
        # A stack devstack did not start: its gunicorn's workers are what can be watched.
        churn = _gunicorn_churn(ctx)
        if churn is not None:
            return churn
        g = ctx.gunicorn
        if g is None:
            return na("no gunicorn found to watch, and no state.json of devstack's (not its stack)")
        return ok(f"gunicorn master pid {g.pid} kept its {g.live_workers} worker(s) over {CHURN_LOOK:.0f} s")
    current = state.read(ctx.t.nginx_prefix)  # a managed stack's nginx prefix is its state dir
    if current is None or not ctx.t.running:
        return na("the stack is not running (`devstack up` starts it)")
    crashes = current.extra.get("crashes", {})
    if not isinstance(crashes, dict):
        crashes = {}
    bad = {
        name: entry
        for name, entry in crashes.items()
        if name != "gunicorn" and isinstance(entry, dict) and int(entry.get("restarts", 0)) >= CRASHING
    }
    names = ", ".join(sorted(current.processes)) or "none"
    churn = _gunicorn_churn(ctx)
    if churn is not None:
        return churn  # the workers of devstack's own gunicorn die: the master's restarts hide it
    if not bad:
        return ok(f"no process exited {CRASHING} times or more ({names})")
    evidence = []
    fixes = []
    for name, entry in sorted(bad.items()):
        code = int(entry.get("code", 0))
        line = str(entry.get("line", "")) or "no output"
        evidence.append(
            Evidence(
                "output", f"{name}: {entry['restarts']} restarts, last exit code {code}: {line}", "state.json"
            )
        )
        if code == 127:
            fixes.append(
                f"{name}: its command is not found — install it in the app's venv (its bin folder is "
                f"first on the process's PATH) or fix the command; `devstack logs {name}`"
            )
        else:
            fixes.append(f"{name}: run its command by hand to see why it exits; `devstack logs {name}`")
    # Up and quiet for a while now (it waited for a database at start?): a warning, not an error.
    now = time.time()
    settled = {
        name
        for name, entry in bad.items()
        if name in current.processes
        and current.processes[name].alive()
        and now - float(entry.get("at", now)) > SETTLED
    }
    crashing = sorted(set(bad) - settled)
    if not crashing:
        shown = ", ".join(f"{name} ({bad[name]['restarts']} restarts)" for name in sorted(settled))
        return Outcome(
            "warning", f"exited before, up for over {SETTLED:.0f} s now: {shown}", evidence, "; ".join(fixes)
        )
    shown = ", ".join(f"{name} ({bad[name]['restarts']} restarts)" for name in crashing)
    return Outcome("error", f"keeps crashing: {shown}", evidence, "; ".join(fixes))
