"""A working day, compressed: one stack under a scripted stream of edits, crashes and pauses.

    python benchmarks/soak.py [--minutes 30] [--seed 1] [--log-mb-per-min 40]

One `devstack up --detach` of the example app (real nginx, gunicorn, watchers) plus a `spam`
process writing numbered log lines through rotation. For --minutes, a seeded script picks:
static edit bursts (each edit verified through nginx: served bytes == disk), code edits (the
new code verified through nginx; one in ten breaks the import and is then fixed), kill -9 of a
random child (recovery verified: the current code answers again), devstack.toml edits (applied
live: the new value is served), and SIGSTOP/SIGCONT of the whole process tree (a suspend).

It prints one table: supervisor RSS, open fds and threads at the start (after one warm-up
event of each kind) and the end (the
watchers are threads of the supervisor, so their memory is its memory), nginx and gunicorn
master RSS, spam lines written vs found in the store (inside the retention, no gap), STALE
notes, verified edits and recoveries, p50/p99 of edit -> fresh and edit -> new code over the
first and the last fifth of the run, and p50/max of a fix saved after a broken import -> its code
served. Exit status 1 if a goal is missed.

Every scripted event is written as it happens to `soak-events.log` beside the project (UTC
time stamps, as in devstack's logs: what was done, to which pid, and how it ended), so a miss
can be tied to its event and to the log lines around it. When a goal is missed, the project
folder and its state dir (logs, state.json) are kept and their place is printed; a run that
meets every goal removes them.

Not simulated: stepping the clock forward. The real clock cannot be stepped on a shared
machine without breaking everything else on it, and faking time inside devstack alone would not
test what a stepped clock does to nginx, gunicorn and the kernel's timers; so it is left out.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.stack import Project, make_project, memory_split  # noqa: E402

SPAM = r"""
import os, sys, time
rate = float(sys.argv[1])  # lines per second
pad = "x" * 180
# Numbering goes on across a kill -9 and restart, so the store can be checked for gaps.
try:
    n = int(open("spam.count").read() or 0)
except OSError:
    n = 0
first = n
start = time.monotonic()
while True:
    due = first + int((time.monotonic() - start) * rate)
    if due > n:
        block = "".join(f"spam seq={i} {pad}\n" for i in range(n, due))
        os.write(1, block.encode())
        n = due
        with open("spam.count.tmp", "w") as f:
            f.write(str(n))
        os.replace("spam.count.tmp", "spam.count")  # a kill -9 never leaves it half written
    time.sleep(0.01)
"""

CHUNK_CSS = "/* soak {n} */\nbody {{ --soak: {n}; }}\n"


def get(port: int, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Cache-Control": "no-cache"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# Responses cut after their headers (the worker that sent them died: a kill -9, a reload),
# by the event that was waiting: "not yet" for the wait, and a figure of the report.
CUT: dict[str, int] = {}
EVENT = ["start"]


def utc_now() -> str:
    """A time stamp in the format of devstack's log lines (UTC), to the millisecond."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class EventLog:
    """The scripted events, one line each as they happen: number, UTC time, kind, what."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = 0
        self._file = path.open("a", encoding="utf-8", buffering=1)

    def say(self, what: str) -> None:
        self._file.write(f"{utc_now()} #{self.n} {EVENT[0]}: {what}\n")

    def begin(self, kind: str) -> None:
        self.n += 1
        EVENT[0] = kind
        self.say("begin")

    def close(self) -> None:
        self._file.close()


def wait_until(check: object, timeout: float) -> float | None:
    """Seconds until check() is true, or None."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if check():  # type: ignore[operator]
                return time.perf_counter() - start
        except OSError:
            pass
        except http.client.HTTPException:
            CUT[EVENT[0]] = CUT.get(EVENT[0], 0) + 1
        time.sleep(0.005)
    return None


def proc_status(pid: int) -> dict[str, int]:
    """RSS (kB), threads and open fds of one process, from /proc."""
    out = {"rss_kb": 0, "threads": 0, "fds": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def tree(pid: int) -> list[int]:
    out = [pid]
    for child in children_of(pid):
        out += tree(child)
    return out


@dataclass
class Day:
    project: Project
    rng: random.Random
    log: EventLog
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    fresh: list[tuple[float, float]] = field(default_factory=list)  # (when, seconds)
    code: list[tuple[float, float]] = field(default_factory=list)
    fixes: list[float] = field(default_factory=list)  # a fix saved after a broken import -> served
    recover: list[tuple[float, float]] = field(default_factory=list)
    marker: str = "Hello from devstack"
    css_n: int = 0
    toml_n: int = 0

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def fail(self, what: str) -> None:
        what = f"event #{self.log.n} at {utc_now()}: {what}"
        self.log.say(f"FAILED: {what}")
        self.failures.append(what)
        print(f"  FAILED: {what}", file=sys.stderr)

    @property
    def port(self) -> int:
        return self.project.public_port

    def state(self) -> dict[str, object]:
        return self.project.state()

    # -- the scripted events ----------------------------------------------------------------
    def static_burst(self) -> None:
        css = self.project.root / "static" / "css" / "app.css"
        original = getattr(self, "_css", None) or css.read_text()
        self._css = original
        burst = self.rng.choice((1, 1, 2, 5, 20))
        for _ in range(burst):
            self.css_n += 1
            css.write_text(original + CHUNK_CSS.format(n=self.css_n))
            if burst > 1:
                time.sleep(self.rng.random() * 0.01)
        self.log.say(f"{burst} write(s) of app.css, the last css {self.css_n}")
        want = hashlib.sha256(css.read_bytes()).digest()
        took = wait_until(
            lambda: hashlib.sha256(get(self.port, "/static/css/app.css")[1]).digest() == want, 10.0
        )
        self.log.say(f"served after {took} s")
        self.count("static edits")
        self.counts["static writes"] = self.counts.get("static writes", 0) + burst
        if took is None:
            self.fail(f"static edit {self.css_n} not served within 10 s")
        else:
            self.fresh.append((time.monotonic(), took))

    def code_edit(self) -> None:
        app = self.project.root / "app.py"
        text = app.read_text()
        new = f"soak-{self.counts.get('code edits', 0)}-{time.monotonic_ns()}"
        broken = self.rng.random() < 0.1
        if broken:
            app.write_text(text.replace(f'GREETING = "{self.marker}"', 'GREETING = "oops" +'))
            self.log.say("app.py saved with a broken import")
            self.count("broken imports")
            time.sleep(self.rng.uniform(0.3, 1.5))  # the developer notices, then fixes it
        app.write_text(text.replace(f'GREETING = "{self.marker}"', f'GREETING = "{new}"'))
        self.log.say(f"app.py saved: GREETING = {new}" + (" (the fix)" if broken else ""))
        started = time.perf_counter()
        took = wait_until(lambda: new.encode() in get(self.port, "/health")[1], 30.0)
        self.log.say(f"served after {took} s")
        self.count("code edits")
        self.marker = new  # what the file holds: the next edit replaces it (no cascade of failures)
        if took is None:
            self.fail(f"code edit {new} not served within 30 s (broken first: {broken})")
            return
        if broken:
            self.fixes.append(time.perf_counter() - started)
        else:
            self.code.append((time.monotonic(), time.perf_counter() - started))

    def kill_child(self) -> None:
        sup = self.state().get("supervisor")
        assert isinstance(sup, dict)
        victims = [p for p in tree(int(sup["pid"])) if p != sup["pid"]]
        if not victims:
            self.fail("no child to kill")
            return
        victim = self.rng.choice(victims)
        try:
            name = Path(f"/proc/{victim}/cmdline").read_bytes().replace(b"\0", b" ")[:60].decode()
            os.kill(victim, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            self.log.say(f"pid {victim} gone before its kill -9")
            return
        self.log.say(f"kill -9 of pid {victim} ({name.strip()})")
        self.count("kill -9")
        marker = self.marker.encode()
        took = wait_until(lambda: marker in get(self.port, "/health")[1], 30.0)
        self.log.say(f"serving again after {took} s")
        if took is None:
            self.fail(f"not serving again 30 s after kill -9 of {victim} ({name})")
        else:
            self.recover.append((time.monotonic(), took))

    def toml_edit(self) -> None:
        self.toml_n += 1
        value = f"soak-{self.toml_n}"
        self.project.write_config(extra=f'[app.env]\nSOAK_VALUE = "{value}"\n{self.extra}')
        self.log.say(f"devstack.toml saved: SOAK_VALUE = {value}")
        self.count("devstack.toml edits")
        marker = self.marker.encode()
        # Applied live: gunicorn restarts with the new environment, the current code answers.
        took = wait_until(lambda: marker in get(self.port, "/health")[1], 30.0)
        self.log.say(f"serving after {took} s")
        if took is None:
            self.fail(f"not serving 30 s after devstack.toml edit {self.toml_n}")

    def suspend(self) -> None:
        sup = self.state().get("supervisor")
        assert isinstance(sup, dict)
        pids = tree(int(sup["pid"]))
        for pid in pids:
            with_ignored(os.kill, pid, signal.SIGSTOP)
        self.log.say(f"SIGSTOP to pids {' '.join(map(str, pids))}")
        time.sleep(self.rng.uniform(1.0, 5.0))
        for pid in reversed(pids):
            with_ignored(os.kill, pid, signal.SIGCONT)
        self.log.say("SIGCONT")
        self.count("suspends (SIGSTOP/SIGCONT)")
        marker = self.marker.encode()
        took = wait_until(lambda: marker in get(self.port, "/health")[1], 30.0)
        self.log.say(f"serving after {took} s")
        if took is None:
            self.fail("not serving 30 s after SIGCONT")

    rate: float = 0.0
    max_bytes: int = 0
    backups: int = 0
    extra: str = ""  # the config's [processes] and [logs] tables, kept by every edit


def with_ignored(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except (OSError, ProcessLookupError):
        pass


def store_check(log_dir: Path, written: int) -> tuple[int, int, int, int]:
    """(lines written, oldest seq kept, newest seq kept, missing inside that window)."""
    seen: set[int] = set()
    pattern = re.compile(rb" spam seq=(\d+) ")
    for path in sorted(log_dir.glob("spam.log*")):
        for match in pattern.finditer(path.read_bytes()):
            seen.add(int(match.group(1)))
    if not seen:
        return written, 0, -1, 0
    low, high = min(seen), max(seen)
    return written, low, high, (high - low + 1) - len(seen)


def quantiles(samples: list[tuple[float, float]], part: str) -> tuple[float, float, int]:
    if not samples:
        return float("nan"), float("nan"), 0
    fifth = max(1, len(samples) // 5)
    chosen = samples[:fifth] if part == "start" else samples[-fifth:]
    values = sorted(s for _, s in chosen)
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    return statistics.median(values), p99, len(values)


def run(minutes: float, seed: int, log_mb_per_min: float) -> int:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="devstack-soak-"))
    code = 1
    try:
        project = make_project(tmp)
        rate = log_mb_per_min * 1024 * 1024 / 200 / 60  # lines/s of ~200 bytes
        (project.root / "spam.py").write_text(SPAM)
        log = EventLog(tmp / "soak-events.log")
        day = Day(project, rng, log)
        day.rate, day.max_bytes, day.backups = rate, 4 * 1024 * 1024, 3
        day.extra = (
            f'[processes]\nspam = "{sys.executable} spam.py {rate}"\n'
            f"[logs]\nmax_bytes = {day.max_bytes}\nbackups = {day.backups}\n"
        )
        project.write_config(extra=day.extra)
        log.begin("up")
        up = project.cli("up", "--detach", timeout=120)
        log.say(f"up --detach exited with {up.returncode}")
        if up.returncode != 0:
            print(up.stderr, file=sys.stderr)
            return 1
        try:
            code = _day(day, minutes, rng)
        finally:
            log.begin("down")
            down = project.down()
            log.say(f"down exited with {down.returncode}")
            log.close()
        return code
    finally:
        if code == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(
                f"kept for reading: the events {tmp / 'soak-events.log'}, the project {tmp / 'chat'}, "
                f"its state dir (logs, state.json) {tmp / 'chat' / '.devstack'}",
                file=sys.stderr,
            )


def _day(day: Day, minutes: float, rng: random.Random) -> int:
    project = day.project
    sup_pid = int(day.state()["supervisor"]["pid"])  # type: ignore[index]
    time.sleep(2.0)  # settle: first scans, first log lines
    events = [
        (day.static_burst, 50),
        (day.code_edit, 25),
        (day.kill_child, 6),
        (day.toml_edit, 3),
        (day.suspend, 2),
    ]
    # Warm-up: each kind of event once, so the baseline holds what any first use imports or
    # caches once (a re-plan's templates, the reload path); growth after it is what a day adds.
    for warm_up, _ in events:
        day.log.begin(f"{warm_up.__name__} (warm-up)")
        warm_up()
    time.sleep(1.0)
    start = sample(project, sup_pid)
    funcs, weights = zip(*events, strict=True)
    deadline = time.monotonic() + minutes * 60
    begun = time.monotonic()
    timeline = [(0.0, proc_status(sup_pid)["rss_kb"], memory_split(sup_pid))]
    while time.monotonic() < deadline:
        event = rng.choices(funcs, weights)[0]
        day.log.begin(event.__name__)
        event()
        time.sleep(rng.uniform(0.0, 0.2))
        if time.monotonic() - begun >= 60 * (timeline[-1][0] + minutes / 10):
            at = (time.monotonic() - begun) / 60
            timeline.append((at, proc_status(sup_pid)["rss_kb"], memory_split(sup_pid)))
    time.sleep(3.0)  # let the last lines reach the store
    end = sample(project, sup_pid)
    timeline.append(((time.monotonic() - begun) / 60, end_rss(end), memory_split(sup_pid)))
    print_timeline(timeline)
    log_dir = project.state_dir / "logs"
    stale = sum(p.read_bytes().count(b" STALE ") for p in log_dir.glob("watcher.log*"))
    written = int((project.root / "spam.count").read_text() or 0)
    _, low, high, missing = store_check(log_dir, written)
    elapsed = (time.monotonic() - begun) / 60
    ok = report(day, start, end, stale, (written, low, high, missing), elapsed)
    return 0 if ok else 1


def end_rss(end: dict[str, dict[str, int]]) -> int:
    return next(v["rss_kb"] for k, v in end.items() if k.startswith("supervisor"))


def print_timeline(timeline: list[tuple[float, int, dict[str, int]]]) -> None:
    """The supervisor's memory over the run: a leak climbs, a warm-up flattens."""
    kinds = list(timeline[0][2])
    print("supervisor resident MB over the run, by kind of mapping:")
    print(f"{'minute':>7} {'RSS':>7} " + " ".join(f"{k:>13}" for k in kinds))
    for at, rss, split in timeline:
        cells = " ".join(f"{split[k] / 1024:>13.1f}" for k in kinds)
        print(f"{at:>7.1f} {rss / 1024:>7.1f} {cells}")


def sample(project: Project, sup_pid: int) -> dict[str, dict[str, int]]:
    state = project.state()
    out = {"supervisor (and its watcher threads)": proc_status(sup_pid)}
    for name in ("nginx", "gunicorn"):
        rec = state.get("processes", {}).get(name)  # type: ignore[union-attr]
        if rec:
            out[f"{name} master"] = proc_status(int(rec["pid"]))
    return out


def report(
    day: Day,
    start: dict[str, dict[str, int]],
    end: dict[str, dict[str, int]],
    stale: int,
    lines: tuple[int, int, int, int],
    minutes: float,
) -> bool:
    rows: list[tuple[str, str, str, str]] = []
    goals: list[bool] = []
    for who in start:
        a, b = start[who], end.get(who, {"rss_kb": 0, "threads": 0, "fds": 0})
        growth = (b["rss_kb"] - a["rss_kb"]) / 1024
        is_sup = who.startswith("supervisor")
        rows.append(
            (
                f"{who} RSS MB",
                f"{a['rss_kb'] / 1024:.1f}",
                f"{b['rss_kb'] / 1024:.1f}",
                f"{growth:+.1f} MB" + (" (goal <= +5)" if is_sup else " (restarted by kills)"),
            )
        )
        if is_sup:
            goals.append(growth <= 5.0)
            rows.append(
                (
                    f"{who} open fds",
                    str(a["fds"]),
                    str(b["fds"]),
                    "flat" if b["fds"] <= a["fds"] + 2 else "GROWS",
                )
            )
            rows.append(
                (
                    f"{who} threads",
                    str(a["threads"]),
                    str(b["threads"]),
                    "flat" if b["threads"] <= a["threads"] + 2 else "GROWS",
                )
            )
            goals += [b["fds"] <= a["fds"] + 2, b["threads"] <= a["threads"] + 2]
    written, low, high, missing = lines
    rows.append(("spam lines written / newest in store", str(written), str(high + 1), "-"))
    rows.append(
        ("spam lines kept (retention) / missing inside", str(high - low + 1), str(missing), "goal 0 missing")
    )
    goals.append(missing == 0 and high + 1 >= written - 1000)  # the last second may be in flight
    rows.append(("STALE notes", "", str(stale), "goal 0"))
    goals.append(stale == 0)
    for what, n in sorted(day.counts.items()):
        rows.append((what, "", str(n), ""))
    rows.append(
        ("failed verifications (edit not served, not recovered)", "", str(len(day.failures)), "goal 0")
    )
    goals.append(not day.failures)
    if day.fixes:
        fixes = sorted(day.fixes)
        rows.append(
            (
                "fix after a broken import -> new code p50 / max s",
                f"{statistics.median(fixes):.3f}",
                f"{fixes[-1]:.3f}",
                f"n={len(fixes)}",
            )
        )
    for what, n in sorted(CUT.items()):
        rows.append((f"responses cut after their headers, waiting in {what}", "", str(n), "retried"))
    for label, samples in (
        ("edit -> fresh (static)", day.fresh),
        ("edit -> new code", day.code),
        ("kill -9 -> serving again", day.recover),
    ):
        a50, a99, an = quantiles(samples, "start")
        b50, b99, bn = quantiles(samples, "end")
        rows.append((f"{label} p50 s (first / last fifth)", f"{a50:.3f}", f"{b50:.3f}", f"n={an}/{bn}"))
        rows.append((f"{label} p99 s (first / last fifth)", f"{a99:.3f}", f"{b99:.3f}", ""))
    width = max(len(r[0]) for r in rows)
    print(f"soak: {minutes:.1f} minutes; one stack; {os.cpu_count()} cores")
    print(f"{'figure':<{width}}  {'start':>10} {'end':>10}  note")
    for name, a, b, note in rows:
        print(f"{name:<{width}}  {a:>10} {b:>10}  {note}")
    for failure in day.failures[:20]:
        print(f"  failure: {failure}")
    ok = all(goals)
    print("all goals met" if ok else "GOALS MISSED")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-mb-per-min", type=float, default=40.0, help="spam's log volume")
    args = parser.parse_args()
    sys.exit(run(args.minutes, args.seed, args.log_mb_per_min))


if __name__ == "__main__":
    main()
