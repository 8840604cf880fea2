"""The stack's other processes (Procfile, [processes]): do they stay up?"""

from __future__ import annotations

import time

from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check
from devstack.stack import state

# A process that exits this often keeps crashing: one restart may be a hiccup.
CRASHING = 2
SETTLED = 60.0  # seconds up since the last exit: no longer "keeps crashing"


@check(
    "procs.crashing",
    "No supervised process keeps crashing",
    "error",
    "run the command by hand in the app's venv (`devstack logs NAME` shows its output) and fix it "
    "in the Procfile or [processes]",
    refs=("issue 25: extra processes run as if the venv were activated",),
)
def crashing(ctx: Context) -> Outcome:
    if not ctx.t.managed or ctx.t.nginx_prefix is None:
        return na("not a stack devstack started (no state.json to read)")
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
