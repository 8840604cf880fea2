"""Benchmark: edit -> verified-fresh latency, and the static watcher's idle cost on 10,000 files.

    python benchmarks/bench_fresh.py [--edits 120] [--idle-seconds 10] [--files 10000]

1. Latency: a real `devstack up --detach` of the example app; the CSS file is rewritten N times and
   each edit's latency is the watcher's log timestamp of `fresh  css/app.css` minus the moment
   before the write. Baseline in the same run: one plain GET of the file through nginx plus its
   sha256 (the floor any verification pays). Modes: inotify (default) and polling.
2. Idle cost: a 10,000-file static tree watched for --idle-seconds with nothing changing; CPU as %
   of one core and memory added (RSS), each watcher in its own process. Baseline in the same run:
   watchdog's default PollingObserver (1 s interval).
Goals: p50 <= 20 ms, p99 <= 100 ms; idle CPU <= 0.5 % (inotify), <= 2 % (polling).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.stack import probes  # noqa: E402
from tests.support.stack import cli_env, make_project  # noqa: E402

CSS = "static/css/app.css"


# -- 1. latency ---------------------------------------------------------------------------------


def _fresh_stamps(log: Path) -> list[float]:
    stamps = []
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return stamps
    for line in lines:
        if " fresh  css/app.css " in line:
            stamps.append(datetime.fromisoformat(line.split(" ", 1)[0]).timestamp())
    return stamps


def latency(edits: int, polling: str) -> tuple[list[float], list[float]]:
    """(edit -> verified-fresh latencies, plain GET+sha256 baseline latencies), in seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        project = make_project(Path(tmp))
        project.write_config(static=f'polling = "{polling}"')
        env = cli_env()
        run = [sys.executable, "-m", "devstack"]
        up = subprocess.run(
            [*run, "up", "--detach"], cwd=project.root, env=env, capture_output=True, text=True, timeout=120
        )
        if up.returncode != 0:
            raise SystemExit(f"devstack up failed: {up.stderr}")
        try:
            log = project.state_dir / "logs" / "watcher.log"
            css = project.root / CSS
            base = css.read_text()
            got: list[float] = []
            floor: list[float] = []
            deadline_per_edit = 10.0
            jitter = random.Random(4)
            time.sleep(0.5)  # the observer is up once `up` returns; let its first scan finish
            for n in range(edits):
                before = len(_fresh_stamps(log))
                text = base + f"/* edit {n} {'x' * (n % 7)} */\n"
                started = time.time()
                css.write_text(text)
                deadline = time.monotonic() + deadline_per_edit
                while True:
                    stamps = _fresh_stamps(log)
                    if len(stamps) > before:
                        got.append(stamps[before] - started)
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"edit {n}: no `fresh` line within {deadline_per_edit} s")
                    time.sleep(0.002)
                # Baseline: what one verification costs by itself (GET through nginx + sha256).
                t0 = time.perf_counter()
                probes.check_static(project.url, "/static/", project.root / "static", css)
                floor.append(time.perf_counter() - t0)
                # Separate saves at random moments: a fixed spacing would phase-lock with the
                # poller's tick and measure one point of it instead of its spread.
                time.sleep(0.05 + jitter.uniform(0, 0.25))
            return got, floor
        finally:
            subprocess.run([*run, "down"], cwd=project.root, env=env, capture_output=True, timeout=60)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- 2. idle cost -------------------------------------------------------------------------------

IDLE_CHILD = r"""
import json, os, sys, time, psutil
sys.path.insert(0, sys.argv[1])
tree, mode, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
from pathlib import Path
from watchdog.events import FileSystemEventHandler
proc = psutil.Process()
rss0 = proc.memory_info().rss
if mode == "watchdog-polling":
    from watchdog.observers.polling import PollingObserver
    observer = PollingObserver()  # watchdog's default: 1 s interval, full snapshot diff
    observer.schedule(FileSystemEventHandler(), tree, recursive=True)
    observer.start()
    stop = observer.stop
else:
    from devstack.watch.fresh import StaticWatcher
    class Quiet:
        def note(self, *a): pass
        def feed(self, *a): pass
        def end(self, *a): pass
        def close(self): pass
    w = StaticWatcher(Path(tree), "http://127.0.0.1:9", "/static/", Quiet(),
                      polling="never" if mode == "inotify" else "always")
    w.start()
    stop = w.stop
time.sleep(3.0)  # first scan / inotify watch setup done
cpu0 = sum(proc.cpu_times()[:2]); t0 = time.monotonic()
time.sleep(seconds)
cpu1 = sum(proc.cpu_times()[:2]); t1 = time.monotonic()
rss1 = proc.memory_info().rss
stop()
print(json.dumps({"cpu": (cpu1 - cpu0) / (t1 - t0) * 100, "rss_mb": (rss1 - rss0) / 2**20}))
"""


def make_tree(root: Path, files: int) -> None:
    per = 100
    for i in range(files):
        folder = root / f"d{i // per:03d}"
        if i % per == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i % per:03d}.css").write_text(f"/* {i} */\n")


def idle(tree: Path, mode: str, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", IDLE_CHILD, str(REPO), str(tree), mode, str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if out.returncode != 0:
        raise SystemExit(f"idle {mode} failed: {out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- report -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=120)
    parser.add_argument("--polling-edits", type=int, default=40)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--files", type=int, default=10000)
    args = parser.parse_args()

    ms = 1000.0
    print(
        f"edit -> verified-fresh latency ({args.edits} edits, inotify; {args.polling_edits} edits, polling)"
    )
    ino, floor = latency(args.edits, "never")
    pol, _ = latency(args.polling_edits, "always") if args.polling_edits else ([], [])
    f50 = statistics.median(floor)
    rows = [
        ("baseline: GET + sha256 alone", statistics.median(floor), pct(floor, 99), ""),
        ("watcher, inotify", statistics.median(ino), pct(ino, 99), "p50 <= 20, p99 <= 100"),
    ]
    if pol:
        rows.append(
            (
                "watcher, polling (shared folders)",
                statistics.median(pol),
                pct(pol, 99),
                "(no goal; tick 250 ms)",
            )
        )
    print(f"  {'':36} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}  goal")
    for name, p50, p99, goal in rows:
        print(f"  {name:36} {p50 * ms:8.1f} {p99 * ms:8.1f} {p50 / f50:14.1f}x  {goal}")

    print(f"\nidle cost, {args.files} files, {args.idle_seconds:.0f} s with no change")
    with tempfile.TemporaryDirectory(prefix="bench-tree-") as tmp:
        tree = Path(tmp) / "static"
        make_tree(tree, args.files)
        results = {
            mode: idle(tree, mode, args.idle_seconds) for mode in ("watchdog-polling", "polling", "inotify")
        }
    base = results["watchdog-polling"]["cpu"]
    goals = {"watchdog-polling": "", "polling": "<= 2 %", "inotify": "<= 0.5 %"}
    names = {
        "watchdog-polling": "baseline: watchdog PollingObserver",
        "polling": "devstack poller",
        "inotify": "devstack inotify",
    }
    print(f"  {'':36} {'CPU %':>8} {'RSS MB':>8} {'CPU / baseline':>15}  goal")
    for mode, r in results.items():
        ratio = r["cpu"] / base if base > 0 else float("nan")
        print(f"  {names[mode]:36} {r['cpu']:8.2f} {r['rss_mb']:8.1f} {ratio:14.2f}x  {goals[mode]}")


if __name__ == "__main__":
    main()
