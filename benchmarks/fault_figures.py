"""The fault suite's figures: one command, real processes, one table.

`python benchmarks/fault_figures.py [--cycles 100] [--kills 5] [--fuzz 3000]`

Runs the scenarios of tests/faults (the same code, tests/support/faults.py) on free loopback
ports and prints what they measured: up/down cycles and what they left behind, recovery times
after kill -9, the crash-loop backoff and its CPU cost, signals, kill -9 of devstack itself, fuzz
cases, traversal attempts, and the watcher under a 100,000-file tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("NO_COLOR", "1")

import psutil  # noqa: E402

from devstack.stack import probes  # noqa: E402
from tests.support import faults as fu  # noqa: E402
from tests.support.stack import Project, kill_leftovers, make_project, processes_under  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def row(scenario: str, figure: str, value: str) -> None:
    ROWS.append((scenario, figure, value))
    print(f"  {scenario:<36} {figure:<34} {value}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"median {ms(statistics.median(values))}, p95 {ms(p95)}, max {ms(values[-1])} (n={len(values)})"


class Lab:
    """Fresh copies of the example app; whatever they leave behind is counted, then removed."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="devstack-faults-"))
        self.projects: list[Project] = []
        self.strays = 0

    def project(self) -> Project:
        proj = make_project(self.base / f"p{len(self.projects)}")
        self.projects.append(proj)
        return proj

    def close(self) -> None:
        for proj in self.projects:
            proj.down()
            self.strays += len(processes_under(proj.root))
            kill_leftovers(proj.root)


def cycles(lab: Lab, count: int) -> None:
    proj = lab.project()
    times, orphans, busy = [], 0, 0
    for _ in range(count):
        cycle = fu.up_down_cycle(proj)
        times.append(cycle.seconds)
        orphans += len(cycle.left) + len(processes_under(proj.root))
        busy += len(cycle.busy)
    row("up --detach / down", "cycles", str(count))
    row("", "time per cycle", spread(times))
    row("", "processes left (orphans)", str(orphans))
    row("", "ports still taken after down", str(busy))


def recoveries(lab: Lab, kills: int) -> None:
    """Each kill on a stack that has been up a while: the first retry, not a crash loop's."""
    proj = lab.project()
    for target in ("gunicorn master", "gunicorn worker", "nginx master"):
        first, serving, told = [], [], 0
        for _ in range(kills):
            proj.up_detached()
            rec = fu.kill_and_recover(proj, target)
            first.append(rec.first_retry)
            serving.append(rec.serving)
            told += bool(rec.told)
            proj.down()
        row(f"kill -9 {target}", "replacement running after", spread(first))
        row("", "serving again after", spread(serving))
        row("", "logs say what happened", f"{told} of {kills}")
    # A second kill soon after the first is a crash loop in the making: it waits longer.
    proj.up_detached()
    repeat = [fu.kill_and_recover(proj, "gunicorn master").first_retry for _ in range(3)]
    row(
        "kill -9 gunicorn, 3 in a row",
        "replacement running after",
        ", ".join(ms(t) for t in repeat) + " (backoff)",
    )
    proj.down()


def crash_loop(lab: Lab, seconds: float) -> None:
    proj = lab.project()
    (proj.root / "crash.py").write_text("import sys\nsys.exit(3)\n")
    proj.write_config(extra=f"[processes]\ncrasher = '{sys.executable} crash.py'\n")
    proj.up_detached()
    loop = fu.watch_crash_loop(proj, "crasher", seconds)
    row("crash loop", f"delays announced in {seconds:.0f} s", ", ".join(f"{d:g}" for d in loop.delays) + " s")
    row("", "supervisor CPU while looping", f"{100 * loop.supervisor_cpu / loop.wall:.1f} %")
    proj.down()


def signals(lab: Lab) -> None:
    for how in ("SIGINT", "SIGTERM", "SIGHUP", "terminal closed"):
        proj = lab.project()
        fg = fu.start_foreground(proj, on_pty=how == "terminal closed")
        assert fu.wait_status(proj, "ready"), fg.output
        procs = fu.tree(proj)
        started = time.perf_counter()
        if how == "terminal closed":
            fg.hang_up()
        else:
            fg.proc.send_signal(getattr(signal, how))
        code = fg.wait()
        took = time.perf_counter() - started
        left = len(fu.alive(procs))
        row(f"{how} to devstack", "stopped in / exit code / orphans", f"{ms(took)} / {code} / {left}")


def devstack_killed(lab: Lab) -> None:
    proj = lab.project()
    (proj.root / "stubborn.py").write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
    )
    proj.write_config(extra=f"[processes]\nstubborn = '{sys.executable} stubborn.py'\n")
    proj.up_detached()
    os.kill(proj.state()["supervisor"]["pid"], signal.SIGKILL)
    time.sleep(0.5)
    survivors = len([p for p in processes_under(proj.root) if p.status() != psutil.STATUS_ZOMBIE])
    started = time.perf_counter()
    result = proj.up_detached()
    took = time.perf_counter() - started
    row("kill -9 of devstack", "survivors (ignore SIGTERM)", str(survivors))
    said = "reported" if "stubborn" in result.stderr else "NOT reported"
    row("", "next up: cleaned + ready in", f"{ms(took)} (cleanup {said})")
    proj.down()


def fuzz(examples: int) -> None:
    from hypothesis import HealthCheck, given, settings

    from tests.faults import test_config_fuzz as tf

    root = Path(tempfile.mkdtemp(prefix="devstack-fuzz-")) / "chat"
    import shutil

    shutil.copytree(tf.EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    failures: list[str] = []

    def safe(doc: str) -> None:
        try:
            tf.check(root / "devstack.toml", doc)
        except AssertionError as exc:
            failures.append(str(exc)[:200])

    options = settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    options(given(tf.documents())(lambda doc: safe(tf.to_toml(doc))))()
    options(given(tf.mutations())(safe))()
    row(
        "config fuzzing (hypothesis)",
        "cases run",
        f"{tf.Tally.cases} ({tf.Tally.accepted} valid, {tf.Tally.cases - tf.Tally.accepted} rejected)",
    )
    row("", "tracebacks / multi-line errors", str(len(failures)))


def traversal(lab: Lab) -> None:
    proj = lab.project()
    fu.plant_secrets(proj)
    proj.up_detached()
    attempts = fu.try_traversals(proj)
    refused = [a for a in attempts if a.status != 200]
    statuses = Counter(a.status for a in attempts)
    row(
        "static traversal",
        "attempts / refused",
        f"{len(attempts)} / {len(refused)} ({', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))})",
    )
    row(
        "",
        "files leaked / listings",
        f"{sum(a.leaked for a in attempts)} / {sum(a.listing for a in attempts)}",
    )
    proj.down()


def watcher(lab: Lab, files: int, events: int) -> None:
    from tests.faults import test_watch_load as tw

    proj = lab.project()
    tw.make_tree(proj.root / "static", files)
    for polling in ("never", "always"):
        proj.write_config(static=f'polling = "{polling}"')
        proj.up_detached()
        sup = psutil.Process(proj.state()["supervisor"]["pid"])
        before = sup.memory_info().rss
        cpu0, t0 = sum(sup.cpu_times()[:2]), time.monotonic()
        time.sleep(3)
        idle = (sum(sup.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
        started = time.perf_counter()
        last = tw.burst(proj, events)
        burst_s = time.perf_counter() - started
        while last.encode() not in probes.http_get(proj.url + "/").body:
            time.sleep(0.01)
        served = time.perf_counter() - started
        after = sup.memory_info().rss
        mode = "inotify" if polling == "never" else "polling"
        row(
            f"{files:,} static files ({mode})",
            "supervisor idle CPU / RSS",
            f"{100 * idle:.1f} % / {before / 2**20:.0f} MB",
        )
        row(
            "",
            f"burst of {events:,} events: wrote in",
            f"{ms(burst_s)}; last app edit served {ms(served - burst_s)} after it",
        )
        row("", "RSS growth over the burst", f"{(after - before) / 2**20:.1f} MB")
        proj.down()


def freshness(lab: Lab, events: int) -> None:
    """The static freshness watcher under a burst: 1,000 files rewritten round-robin."""
    proj = lab.project()
    burst_dir = proj.root / "static" / "burst"
    burst_dir.mkdir()
    files = [burst_dir / f"f{i:04d}.txt" for i in range(1000)]
    for file in files:
        file.write_text("initial\n")
    proj.up_detached()
    sup = psutil.Process(proj.state()["supervisor"]["pid"])
    before = sup.memory_info().rss
    log = proj.state_dir / "logs" / "watcher.log"
    for number in range(events):
        files[number % len(files)].write_text(f"edit {number}\n")
    (burst_dir / "0-last.txt").write_text("last\n")
    ended = time.perf_counter()
    while "burst/0-last.txt" not in log.read_text(errors="replace"):
        time.sleep(0.01)
    caught_up = time.perf_counter() - ended
    lines = [ln.partition(" d ")[2] for ln in log.read_text(errors="replace").splitlines()]
    checked = sum(
        int(ln.split()[1]) if ln.split()[2:3] == ["files"] else 1
        for ln in lines
        if ln.startswith("fresh") and "burst/" in ln
    )
    stale = sum(ln.startswith(("STALE", "cannot verify")) for ln in lines)
    row(
        f"freshness watcher, {events:,} events",
        "caught up after the burst",
        f"{ms(caught_up)}; {checked} checks fresh, {stale} STALE/unverified",
    )
    row("", "RSS growth over the burst", f"{(sup.memory_info().rss - before) / 2**20:.1f} MB")
    proj.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--fuzz", type=int, default=3000)
    parser.add_argument("--loop-seconds", type=float, default=15.0)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    lab = Lab()
    print(f"  {'scenario':<36} {'figure':<34} value")
    try:
        cycles(lab, args.cycles)
        recoveries(lab, args.kills)
        crash_loop(lab, args.loop_seconds)
        signals(lab)
        devstack_killed(lab)
        fuzz(args.fuzz)
        traversal(lab)
        watcher(lab, args.files, args.events)
        if importlib.util.find_spec("devstack.watch.fresh") is not None:
            freshness(lab, args.events)
    finally:
        lab.close()
    row("all scenarios", "processes left at the end", str(lab.strays))
    return 0


if __name__ == "__main__":
    sys.exit(main())
