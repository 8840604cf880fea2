"""Log multiplexer benchmark: devstack vs honcho 2.0, measured in the same run.

    python benchmarks/bench_logs.py [--lines 200000] [--procs 3] [--repeat 3]

Throughput: --procs children each write --lines short lines as fast as they can; the multiplexer
(devstack's Child + LogMux, exactly as `devstack up` wires them, log files included; or
`honcho start`) sends them to a file or to /dev/null. The time is the multiplexer's whole run,
start to exit (every line delivered), best of --repeat. Lines are counted in the output file, and
for devstack also in its log files (to /dev/null that is the only count there is).

Latency: one child writes a line stamped with time.time_ns() every 10 ms; the multiplexer's
stdout is a pty (a screen) read here; latency = arrival - stamp; p50 and p99.

Needs honcho (pip install 'honcho==2.0.0'); without it the honcho rows are skipped.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Writes N short lines in 64-line blocks, then waits for its siblings before exiting: honcho
# stops every process as soon as one exits, which would cut the slower ones short.
PRODUCER = r"""
import os, sys, time
name, count, barrier, procs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
line = name + " %07d short log line\n"
for start in range(0, count, 64):
    block = "".join(line % i for i in range(start, min(start + 64, count))).encode()
    view = memoryview(block)
    while view:
        view = view[os.write(1, view):]
open(os.path.join(barrier, name), "w").close()
while len(os.listdir(barrier)) < procs:
    time.sleep(0.001)
"""

TICKER = r"""
import os, sys, time
count = int(sys.argv[1])
time.sleep(0.3)
for i in range(count):
    os.write(1, b"tick %d %d\n" % (i, time.time_ns()))
    time.sleep(0.01)
"""

# The devstack side: the same Child and LogMux `devstack up` uses, without nginx and gunicorn.
RUNNER = r"""
import sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from devstack.logs.sink import LogMux
from devstack.logs.format import width_for
from devstack.stack.plan import ProcessSpec
from devstack.procs.child import Child
log_dir, procfile = Path(sys.argv[2]), Path(sys.argv[3])
specs = []
for raw in procfile.read_text().splitlines():
    name, command = raw.split(": ", 1)
    specs.append(ProcessSpec(name=name, argv=["/bin/sh", "-c", "exec " + command], cwd=Path.cwd()))
mux = LogMux(log_dir, sys.stdout.buffer, color=sys.stdout.isatty(),
             width=width_for([s.name for s in specs]))
left = threading.Semaphore(0)
children = [Child(spec, mux, lambda child, code: left.release()) for spec in specs]
for child in children:
    child.start()
for child in children:
    left.acquire()
for child in children:
    for reader in child._readers:
        reader.join()
mux.close()
"""


def write_procfile(work: Path, procs: int, lines: int) -> tuple[Path, Path]:
    (work / "producer.py").write_text(PRODUCER)
    barrier = work / "barrier"
    shutil.rmtree(barrier, ignore_errors=True)
    barrier.mkdir()
    procfile = work / "Procfile"
    procfile.write_text(
        "".join(
            f"p{i}: {sys.executable} {work / 'producer.py'} p{i} {lines} {barrier} {procs}\n"
            for i in range(1, procs + 1)
        )
    )
    return procfile, barrier


def mux_argv(tool: str, work: Path, procfile: Path) -> list[str]:
    if tool == "devstack":
        return [sys.executable, "-c", RUNNER, str(REPO), str(work / "logs"), str(procfile)]
    return [shutil.which("honcho") or "honcho", "-f", str(procfile), "-d", str(work), "start"]


def run_once(tool: str, work: Path, procs: int, lines: int, target: str) -> tuple[float, dict[str, int]]:
    procfile, _ = write_procfile(work, procs, lines)
    shutil.rmtree(work / "logs", ignore_errors=True)
    out_path = work / "out.txt" if target == "file" else Path(os.devnull)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR",)}
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        subprocess.run(
            mux_argv(tool, work, procfile),
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=work,
            env=env,
            check=False,
            timeout=600,
        )
        elapsed = time.perf_counter() - started
    counts: dict[str, int] = {}
    if target == "file":
        counts["out"] = count_lines(out_path, procs)
    if tool == "devstack":
        counts["files"] = sum(count_lines(p, procs) for p in (work / "logs").glob("p*.log*"))
    return elapsed, counts


def count_lines(path: Path, procs: int) -> int:
    """Producer lines only (not the multiplexer's own start/stop notes)."""
    pattern = re.compile(rb"\bp\d+ \d{7} short log line$", re.M)
    return len(pattern.findall(path.read_bytes()))


def latency(tool: str, work: Path, ticks: int) -> list[float]:
    (work / "ticker.py").write_text(TICKER)
    procfile = work / "Procfile.latency"
    procfile.write_text(f"ticker: {sys.executable} {work / 'ticker.py'} {ticks}\n")
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        mux_argv(tool, work, procfile),
        stdout=slave,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=work,
        env=env,
    )
    os.close(slave)
    found: list[float] = []
    pending = b""
    tick = re.compile(rb"tick \d+ (\d+)")
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        now = time.time_ns()
        if not data:
            break
        pending += data
        *complete, pending = pending.split(b"\n")
        for line in complete:
            match = tick.search(line)
            if match:
                found.append((now - int(match.group(1))) / 1e6)
        if len(found) >= ticks:
            break
    proc.wait(timeout=30)
    os.close(master)
    return found


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mux_only(procs: int, lines: int) -> float:
    """devstack's LogMux alone, in this process: 64 KiB chunks in, file + screen file out."""
    sys.path.insert(0, str(REPO))
    from devstack.logs.sink import LogMux

    data = b"".join(b"p1 %07d short log line\n" % i for i in range(lines))
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    with tempfile.TemporaryDirectory(prefix="bench-mux-") as tmp, open(Path(tmp) / "screen", "wb") as screen:
        mux = LogMux(Path(tmp) / "logs", screen, width=12)
        started = time.perf_counter()
        for proc in range(procs):
            for chunk in chunks:
                mux.feed(f"p{proc}", "stdout", chunk)
        mux.close()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--procs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    tools = ["devstack"] + (["honcho"] if shutil.which("honcho") else [])
    total = args.lines * args.procs
    results: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}
    startup: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        work = Path(tmp)
        for target in ("file", "devnull"):
            for tool in tools:
                repeat = args.repeat if tool == "devstack" else 1
                runs = [run_once(tool, work, args.procs, args.lines, target) for _ in range(repeat)]
                results[(tool, target)] = min(runs, key=lambda r: r[0])
                # The same run with one line per process: interpreter start, children, exit.
                startup[(tool, target)] = min(
                    run_once(tool, work, args.procs, 1, target)[0] for _ in range(repeat)
                )
        lat = {tool: latency(tool, work, args.ticks) for tool in tools}
    mux_seconds = min(mux_only(args.procs, args.lines) for _ in range(args.repeat))
    print(
        f"\n{args.procs} processes x {args.lines:,} lines = {total:,} lines; "
        f"devstack best of {args.repeat}, honcho 1 run (it is slow)"
    )
    print(
        "wall = the multiplexer's whole run; net = wall minus the same run with 1 line per "
        "process (startup and exit)\n"
    )
    print(
        f"{'target':<8} {'tool':<9} {'wall s':>7} {'lines/s':>10} {'x honcho':>8} "
        f"{'net s':>6} {'net lines/s':>12} {'x honcho':>8} {'out lines':>9} {'log files':>9} "
        f"{'lost':>4}"
    )
    for target in ("file", "devnull"):
        base = results.get(("honcho", target))
        base_net = base[0] - startup[("honcho", target)] if base else None
        for tool in tools:
            seconds, counts = results[(tool, target)]
            net = max(seconds - startup[(tool, target)], 1e-6)
            ratio = f"{base[0] / seconds:7.1f}x" if base and tool != "honcho" else "-"
            net_ratio = f"{base_net / net:7.1f}x" if base_net and tool != "honcho" else "-"
            seen = counts.get("out", counts.get("files"))
            lost = "-" if seen is None else str(total - seen)
            print(
                f"{target:<8} {tool:<9} {seconds:7.3f} {total / seconds:10,.0f} {ratio:>8} "
                f"{net:6.3f} {total / net:12,.0f} {net_ratio:>8} "
                f"{counts.get('out', '-')!s:>9} {counts.get('files', '-')!s:>9} {lost:>4}"
            )
    print(
        f"\nLogMux alone (in-process, 64 KiB chunks, log files + screen file): "
        f"{total / mux_seconds:,.0f} lines/s"
    )
    print(f"\nlatency, child write -> line on a pty, {args.ticks} lines at 100/s:")
    for tool in tools:
        values = lat[tool]
        print(
            f"  {tool:<9} p50 {pct(values, 0.5):7.2f} ms   p99 {pct(values, 0.99):7.2f} ms   "
            f"({len(values)}/{args.ticks} lines)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
