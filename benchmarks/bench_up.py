"""devstack up -> ready, and code edit -> new response, against gunicorn's own --reload by hand.

One command: `python benchmarks/bench_up.py [--edits N] [--starts N]`. Everything runs for real
(nginx, gunicorn, the example chat app) on free loopback ports; prints one table whose ratio
column compares each row with its named baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "chat"
POLL = 0.002


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_for(port: int, path: str, needle: bytes, timeout: float = 30.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            status, body = get(port, path)
            if status == 200 and needle in body:
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(POLL)
    raise TimeoutError(f"{needle!r} not served on :{port}{path} within {timeout} s")


def make_copy(base: Path, worker: str) -> tuple[Path, int, int]:
    root = base / f"chat-{worker}-{time.monotonic_ns()}"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    public, app = free_port(), free_port()
    (root / "devstack.toml").write_text(
        f'[app]\nwsgi = "app:app"\nworker = "{worker}"\n[static]\ndir = "static"\n'
        f'[server]\nlisten = "127.0.0.1:{public}"\napp_port = {app}\n'
    )
    return root, public, app


def env() -> dict[str, str]:
    e = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    e.pop("GUNICORN_CMD_ARGS", None)
    return e


def edit_latencies(root: Path, port: int, edits: int) -> list[float]:
    app_py = root / "app.py"
    original = app_py.read_text()
    out = []
    time.sleep(1.0)  # gunicorn's reloader takes its first snapshot after boot: do not race it
    for i in range(edits):
        marker = f"edit-{i}-{time.monotonic_ns()}"
        app_py.write_text(original.replace("Hello from devstack", marker))
        out.append(wait_for(port, "/health", marker.encode()))
        time.sleep(0.3)  # let the old worker finish retiring before the next edit
    app_py.write_text(original)
    return out


def bench_devstack(base: Path, worker: str, edits: int, starts: int) -> tuple[list[float], list[float]]:
    readies: list[float] = []
    latencies: list[float] = []
    for attempt in range(starts):
        root, public, _ = make_copy(base, worker)
        t0 = time.perf_counter()
        up = subprocess.run(
            [sys.executable, "-m", "devstack", "up", "--detach"],
            cwd=root,
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if up.returncode != 0:
            raise RuntimeError(up.stderr)
        readies.append(time.perf_counter() - t0)
        try:
            if attempt == 0:
                latencies = edit_latencies(root, public, edits)
        finally:
            subprocess.run(
                [sys.executable, "-m", "devstack", "down"],
                cwd=root,
                env=env(),
                capture_output=True,
                timeout=60,
            )
    return readies, latencies


def bench_gunicorn(
    base: Path, worker: str, engine: str, edits: int, starts: int
) -> tuple[list[float], list[float]]:
    """gunicorn --reload started by hand, as the blog setups do (no nginx in front)."""
    readies: list[float] = []
    latencies: list[float] = []
    for attempt in range(starts):
        root, _, app = make_copy(base, worker)
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "1",
            "-k",
            worker,
            "-b",
            f"127.0.0.1:{app}",
            "--reload",
            "--reload-engine",
            engine,
            "--no-control-socket",
            "app:app",
        ]
        if worker == "gthread":
            argv[5:5] = ["--threads", "16"]
        e = env()
        e["DEVSTACK_ASYNC_MODE"] = "gevent" if worker == "gevent" else "threading"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=root,
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(app, "/", b"devstack")
            readies.append(time.perf_counter() - t0)
            if attempt == 0:
                latencies = edit_latencies(root, app, edits)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return readies, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=12)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="devstack-bench-") as tmp:
        base = Path(tmp)
        for worker in ("gthread", "gevent"):
            # gunicorn's inotify engine crashes gevent workers at boot: poll is its only choice.
            engines = ("inotify", "poll") if worker == "gthread" else ("poll",)
            base_ready, base_lat = bench_gunicorn(base, worker, engines[-1], args.edits, args.starts)
            baseline = f"gunicorn --reload-engine {engines[-1]} ({worker})"
            ready, lat = bench_devstack(base, worker, args.edits, args.starts)
            rows.append(
                (
                    f"devstack up -> ready ({worker}, nginx+gunicorn+3 probes)",
                    "median s",
                    statistics.median(ready),
                    statistics.median(base_ready),
                    f"gunicorn alone -> first 200 ({worker})",
                )
            )
            rows.append(
                (
                    f"devstack: edit -> new response ({worker})",
                    "p50 s",
                    statistics.median(lat),
                    statistics.median(base_lat),
                    baseline,
                )
            )
            rows.append(
                (
                    f"devstack: edit -> new response ({worker})",
                    "p90 s",
                    pct(lat, 0.9),
                    pct(base_lat, 0.9),
                    baseline,
                )
            )
            for engine in engines[:-1]:
                _, other = bench_gunicorn(base, worker, engine, args.edits, 1)
                rows.append(
                    (
                        f"gunicorn --reload-engine {engine} ({worker})",
                        "p50 s",
                        statistics.median(other),
                        statistics.median(base_lat),
                        baseline,
                    )
                )
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'stat':<8} {'value':>8} {'baseline':>9} {'ratio':>6}  baseline is")
    for name, stat, value, base_value, base_name in rows:
        ratio = value / base_value if base_value else float("nan")
        print(f"{name:<{width}}  {stat:<8} {value:>8.3f} {base_value:>9.3f} {ratio:>6.2f}  {base_name}")
    print(f"(edits per row: {args.edits}; starts per row: {args.starts}; ratio < 1 means devstack is faster)")


if __name__ == "__main__":
    main()
