"""devstack up -> ready, down, every command's start, `logs` on a 1 GB store, and code edit ->
new response against gunicorn's own --reload by hand.

One command: `python benchmarks/bench_up.py [--edits N] [--starts N] [--runs N] [--store-gb G]`;
`--off` instead measures what each mechanism of devstack/speed/ gains (each switched off in turn).
Everything runs for real (nginx, gunicorn, the example chat app) on free loopback ports; prints
one table whose ratio column compares each row with its named baseline measured in the same run,
interleaved (baseline, then devstack, then baseline...) so a busy machine hurts both alike.

Installed as users install (the default, `--install wheel`): devstack from a wheel of this
checkout in a venv of its own (what pipx and `uv tool install` make), the app in its own `.venv`
with the example's requirements, and the baseline is that `.venv`'s gunicorn. Both venvs are
cached by the checkout's contents. `--install checkout` runs this checkout with this
interpreter (PYTHONPATH), as before.
The goals (issue 13): up -> ready <= 1.3 x gunicorn alone -> first 200 (measured for a fresh
copy of the project, for a project `up` ran in before, where gunicorn gets its head start, and
for one whose devstack.toml was edited since, where it starts from the plan instead);
`status`, `logs -n 20`, `down` <= 1.3 x `python -c "import typer"` (`--help` is a row too, with no
goal); `down` <= 0.3 s;
`logs -n 20` and `logs --since 1m --grep X` on a 1 GB store (rotations included) <= 0.2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import random
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


class Install:
    """Which devstack and which app interpreter the runs use (see the module's docstring)."""

    def __init__(self, devstack: list[str], app_python: str, app_venv: Path | None, env: dict[str, str]):
        self.devstack = devstack  # argv prefix of the `devstack` command
        self.app_python = app_python  # the interpreter of gunicorn alone
        self.app_venv = app_venv  # linked as each project's .venv (None: devstack's own python)
        self.env = env


def checkout_install() -> Install:
    e = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    e.pop("GUNICORN_CMD_ARGS", None)
    # devstack's own modules from cached bytecode, as in any install (pip compiles what it
    # installs, typer included): with PYTHONDONTWRITEBYTECODE set, every devstack command
    # compiled its modules afresh, which no user pays. Cached outside the tree.
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    e["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return Install([sys.executable, "-m", "devstack"], sys.executable, None, e)


def wheel_install() -> Install:
    """devstack's wheel in a tool venv, the example's requirements in an app venv (cached)."""
    digest = hashlib.sha256()
    for folder in ("devstack", "templates"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    digest.update((REPO / "pyproject.toml").read_bytes() + (EXAMPLE / "requirements.txt").read_bytes())
    home = Path(tempfile.gettempdir()) / f"devstack-bench-venvs-{os.getuid()}" / digest.hexdigest()[:16]
    tool, app = home / "tool", home / "app"

    def quiet(*argv: str | Path) -> None:
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)

    if not (tool / "bin" / "devstack").exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        print(f"building the wheel and two venvs in {home} (once per checkout state)", file=sys.stderr)
        quiet(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", home, REPO)
        quiet(sys.executable, "-m", "venv", tool)
        quiet(tool / "bin" / "pip", "install", "-q", next(home.glob("*.whl")))
    if not (app / "bin" / "gunicorn").exists():
        quiet(sys.executable, "-m", "venv", app)
        reqs = EXAMPLE / "requirements.txt"
        # gevent for the gevent rows, inotify for gunicorn's inotify reload engine
        quiet(app / "bin" / "pip", "install", "-q", "-r", reqs, "gevent", "inotify")
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    e.pop("GUNICORN_CMD_ARGS", None)
    e.pop("PYTHONDONTWRITEBYTECODE", None)  # pip compiled both venvs: use it, as users do
    e["NO_COLOR"] = "1"
    return Install([str(tool / "bin" / "devstack")], str(app / "bin" / "python"), app, e)


INSTALL: Install  # set by main()


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
        except (OSError, http.client.HTTPException):  # a response cut by the old worker's exit
            pass
        time.sleep(POLL)
    raise TimeoutError(f"{needle!r} not served on :{port}{path} within {timeout} s")


def make_copy(base: Path, worker: str) -> tuple[Path, int, int]:
    root = base / f"chat-{worker}-{time.monotonic_ns()}"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    public, app = free_port(), free_port()
    while app == public:  # the kernel may hand the same free port out twice in a row
        app = free_port()
    (root / "devstack.toml").write_text(
        f'[app]\nwsgi = "app:app"\nworker = "{worker}"\n[app.env]\n{APP_ENV_TOML}[static]\ndir = "static"\n'
        f'[server]\nlisten = "127.0.0.1:{public}"\napp_port = {app}\n'
    )
    if INSTALL.app_venv is not None:  # the project's own .venv, which devstack finds and uses
        (root / ".venv").symlink_to(INSTALL.app_venv)
    return root, public, app


PYCACHE = Path(tempfile.gettempdir()) / f"devstack-bench-pycache-{os.getuid()}"
# gunicorn (alone or under devstack) as before: site-packages from pip's bytecode, the app
# compiled afresh. Cached, the app's edits made within one second at the same size would
# load stale bytecode (pyc records the source's mtime in whole seconds, and its size).
APP_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": ""}
APP_ENV_TOML = "".join(f'{key} = "{value}"\n' for key, value in APP_ENV.items())


OFF = ""  # DEVSTACK_SPEED_OFF for devstack's runs (--off: each mechanism of devstack/speed/ off)


def env() -> dict[str, str]:
    return {**INSTALL.env, "DEVSTACK_SPEED_OFF": OFF}


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


def devstack(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INSTALL.devstack, *args],
        cwd=root,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_devstack_start(base: Path, worker: str, root: Path | None = None) -> tuple[float, float, Path]:
    """(up --detach -> ready, down of that healthy stack, the project): a fresh copy of the
    example, or root again (its second and later `up`: gunicorn gets its head start)."""
    root = root if root is not None else make_copy(base, worker)[0]
    t0 = time.perf_counter()
    up = devstack(root, "up", "--detach")
    ready = time.perf_counter() - t0
    if up.returncode != 0:
        devstack(root, "down")
        raise RuntimeError(up.stderr)
    time.sleep(0.3)  # idle, as a developer's stack is when they stop it
    t0 = time.perf_counter()
    devstack(root, "down", timeout=60)
    return ready, time.perf_counter() - t0, root


def one_gunicorn_start(base: Path, worker: str, engine: str, edits: int) -> tuple[float, list[float]]:
    """gunicorn --reload started by hand, as the blog setups do (no nginx in front)."""
    root, _, app = make_copy(base, worker)
    argv = [
        INSTALL.app_python,
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
    e = {**env(), **APP_ENV}
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
        ready = time.perf_counter() - t0
        latencies = edit_latencies(root, app, edits) if edits else []
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return ready, latencies


def devstack_edits(base: Path, worker: str, edits: int) -> list[float]:
    root, public, _ = make_copy(base, worker)
    up = devstack(root, "up", "--detach")
    if up.returncode != 0:
        raise RuntimeError(up.stderr)
    try:
        return edit_latencies(root, public, edits)
    finally:
        devstack(root, "down", timeout=60)


def wall(argv: list[str], cwd: Path, cache: Path | None = None) -> float:
    """One run; cache: a per-user cache folder of its own (XDG_CACHE_HOME) instead of the user's."""
    run_env = env() if cache is None else {**env(), "XDG_CACHE_HOME": str(cache)}
    t0 = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - t0


def command_starts(base: Path, runs: int, store: Path | None) -> dict[str, list[float]]:
    """Each command's whole run (interpreter included), interleaved with `import typer`."""
    root, _, _ = make_copy(base, "gthread")
    up = devstack(root, "up", "--detach")  # status and logs have something to show
    if up.returncode != 0:
        raise RuntimeError(up.stderr)
    ds = INSTALL.devstack
    # typer as devstack's own interpreter imports it (the tool venv's python, in a wheel install)
    py = str(Path(ds[0]).with_name("python")) if len(ds) == 1 else ds[0]
    cases: dict[str, tuple[list[str], Path]] = {
        "import typer": ([py, "-c", "import typer"], root),
        "devstack --help": ([*ds, "--help"], root),
        "devstack status": ([*ds, "status"], root),
        "devstack logs -n 20": ([*ds, "logs", "-n", "20"], root),
        # down of a project with nothing running: the command's own cost (a running stack's down is
        # measured with the starts above)
        "devstack down (nothing running)": ([*ds, "down"], base / "idle"),
    }
    make_copy_at(base / "idle")
    if store is not None:
        cases[f"logs -n 20 ({gb_label(store)} store)"] = ([*ds, "logs", "-n", "20"], store)
        cases[f"logs --since 1m --grep X ({gb_label(store)} store)"] = (
            [*ds, "logs", "--since", "1m", "--grep", "GET /api/[0-9]+7 "],
            store,
        )
    out: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for attempt in range(runs):
            for name, (argv, cwd) in cases.items():
                fresh = base / "caches" / f"{attempt}" if "its first" in name else None
                out[name].append(wall(argv, cwd, fresh))
    finally:
        devstack(root, "down", timeout=60)
    return out


def gb_label(store: Path) -> str:
    size = sum(p.stat().st_size for p in (store / ".devstack" / "logs").iterdir())
    return f"{size / 1024**3:.1f} GB"


def make_copy_at(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "devstack.toml").write_text('[app]\nwsgi = "app:app"\n')


def build_store(root: Path, gigabytes: float) -> Path:
    """A project whose .devstack/logs holds `gigabytes` of records over the last 24 hours:
    two sources, each a current file and four rotated ones (what logs.max_bytes/backups make)."""
    make_copy_at(root)
    logs = root / ".devstack" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    per_file = int(gigabytes * 1024**3 / 10)
    now = time.time()
    start = now - 24 * 3600
    span = (now - start) / 11  # each file covers 2/11 of the day, the two sources interleaved
    for s_index, source in enumerate(("gunicorn", "nginx.access")):
        for f_index, suffix in enumerate((".4", ".3", ".2", ".1", "")):
            first = start + span * (f_index * 2 + s_index)
            write_records(logs / f"{source}.log{suffix}", first, first + span * 2, per_file)
    return root


LINE = b'%s.%06dZ o 127.0.0.1 "GET /api/%d HTTP/1.1" 200 512 0.004 "-" "bench" upstream=127.0.0.1:5001\n'


def write_records(path: Path, first: float, last: float, size: int) -> None:
    from datetime import UTC, datetime

    line_len = 110
    count = max(1, size // line_len)
    step = (last - first) / count
    with open(path, "wb", buffering=1024 * 1024) as handle:
        when = first
        done = 0
        while done < count:
            second = int(when)
            head = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
            lines = []
            while done < count and int(when) == second:
                micros = int((when - second) * 1e6)
                lines.append(LINE % (head, micros, done))
                when += step
                done += 1
            handle.write(b"".join(lines))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


Row = tuple[str, str, float, float, str]


def start_rows(base: Path, worker: str, starts: int, edits: int) -> list[Row]:
    # gunicorn's inotify engine crashes gevent workers at boot: poll is its only choice.
    engines = ("inotify", "poll") if worker == "gthread" else ("poll",)
    base_ready: list[float] = []
    ready: list[float] = []
    again: list[float] = []
    edited: list[float] = []
    downs: list[float] = []
    base_lat: list[float] = []
    project = one_devstack_start(base, worker)[2]  # a project where `up` ran before
    other = one_devstack_start(base, worker)[2]  # ... whose devstack.toml is edited before each up
    toml = (other / "devstack.toml").read_text()
    for attempt in range(starts):  # interleaved: baseline, devstack, devstack again, baseline, ...
        g_ready, lat = one_gunicorn_start(base, worker, engines[-1], edits if attempt == 0 else 0)
        base_ready.append(g_ready)
        base_lat = base_lat or lat
        d_ready, d_down, _ = one_devstack_start(base, worker)
        ready.append(d_ready)
        downs.append(d_down)
        again.append(one_devstack_start(base, worker, project)[0])
        # A changed [app.env]: the plan differs from the last one (the gate carries it).
        (other / "devstack.toml").write_text(toml.replace("[app.env]\n", f'[app.env]\nEDIT = "{attempt}"\n'))
        edited.append(one_devstack_start(base, worker, other)[0])
    baseline = f"gunicorn --reload-engine {engines[-1]} ({worker})"
    alone = f"gunicorn alone -> first 200 ({worker})"
    rows: list[Row] = [
        (
            f"devstack up --detach -> ready ({worker}; the project's first up)",
            "median s",
            statistics.median(ready),
            statistics.median(base_ready),
            alone,
        ),
        (
            f"devstack up --detach -> ready ({worker}; an up after a down)",
            "median s",
            statistics.median(again),
            statistics.median(base_ready),
            alone,
        ),
        (
            f"devstack up --detach -> ready ({worker}; an up after a devstack.toml edit)",
            "median s",
            statistics.median(edited),
            statistics.median(base_ready),
            alone,
        ),
        (
            f"devstack down, healthy stack ({worker}; goal <= 0.3 s)",
            "median s",
            statistics.median(downs),
            0.3,
            "the goal",
        ),
    ]
    if edits:
        lat = devstack_edits(base, worker, edits)
        rows += [
            (
                f"devstack: edit -> new response ({worker})",
                "p50 s",
                statistics.median(lat),
                statistics.median(base_lat),
                baseline,
            ),
            (
                f"devstack: edit -> new response ({worker})",
                "p90 s",
                pct(lat, 0.9),
                pct(base_lat, 0.9),
                baseline,
            ),
        ]
        for engine in engines[:-1]:
            _, other = one_gunicorn_start(base, worker, engine, edits)
            rows.append(
                (
                    f"gunicorn --reload-engine {engine} ({worker})",
                    "p50 s",
                    statistics.median(other),
                    statistics.median(base_lat),
                    baseline,
                )
            )
    return rows


SPEED = ("fastpath", "handoff", "gate", "planned", "pythoncache")


def speed_rows(base: Path, starts: int, runs: int, names: tuple[str, ...] = SPEED) -> list[Row]:
    """What each mechanism of devstack/speed/ gains: the same starts and commands with it
    switched off (DEVSTACK_SPEED_OFF), interleaved with all on and with gunicorn alone."""
    global OFF
    variants = ["", *names]
    first: dict[str, list[float]] = {v: [] for v in variants}
    again: dict[str, list[float]] = {v: [] for v in variants}
    status: dict[str, list[float]] = {v: [] for v in variants}
    alone: list[float] = []
    projects = {v: one_devstack_start(base, "gthread")[2] for v in variants}
    for round_ in range(starts):
        alone.append(one_gunicorn_start(base, "gthread", "poll", 0)[0])
        order = list(variants)
        random.Random(round_).shuffle(order)  # no variant always first after the baseline
        for v in order:
            OFF = v
            try:
                first[v].append(one_devstack_start(base, "gthread")[0])
                again[v].append(one_devstack_start(base, "gthread", projects[v])[0])
                up = devstack(projects[v], "up", "--detach")
                if up.returncode != 0:
                    raise RuntimeError(up.stderr)
                for _ in range(max(1, runs // starts)):
                    status[v].append(wall([*INSTALL.devstack, "status"], projects[v]))
                devstack(projects[v], "down", timeout=60)
            finally:
                OFF = ""
    g = statistics.median(alone)
    rows: list[Row] = []
    for v in variants:
        label = "all on" if not v else f"{v} off"
        rows.append(
            (f"speed: first up ({label})", "median s", statistics.median(first[v]), g, "gunicorn alone")
        )
        rows.append(
            (
                f"speed: up after a down ({label})",
                "median s",
                statistics.median(again[v]),
                g,
                "gunicorn alone",
            )
        )
        rows.append(
            (
                f"speed: status ({label})",
                "median s",
                statistics.median(status[v]),
                statistics.median(status[""]),
                "status, all on",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=12, help="code edits per reload row (0: none)")
    parser.add_argument("--starts", type=int, default=5, help="up/down cycles per worker")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    parser.add_argument("--store-gb", type=float, default=1.0, help="size of the log store (0: skip)")
    parser.add_argument("--workers", default="gthread,gevent")
    parser.add_argument(
        "--install",
        choices=("wheel", "checkout"),
        default="wheel",
        help="wheel: devstack and the app in venvs of their own, as users install (default); "
        "checkout: this checkout on PYTHONPATH with this interpreter",
    )
    parser.add_argument(
        "--off",
        nargs="?",
        const=",".join(SPEED),
        default="",
        help="instead: each start-up mechanism of devstack/speed/ (or those named, comma-separated) "
        "switched off in turn (first up, up after a down, status), interleaved with all on and "
        "gunicorn alone",
    )
    args = parser.parse_args()
    global INSTALL
    INSTALL = wheel_install() if args.install == "wheel" else checkout_install()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="devstack-bench-") as tmp:
        base = Path(tmp)
        if args.off:
            rows += speed_rows(base, args.starts, args.runs, tuple(args.off.split(",")))
        for worker in [] if args.off else args.workers.split(","):
            rows += start_rows(base, worker, args.starts, args.edits)
        store = build_store(base / "store", args.store_gb) if args.store_gb > 0 and not args.off else None
        starts = command_starts(base, args.runs, store) if not args.off else {"import typer": [1.0]}
        typer_s = statistics.median(starts.pop("import typer"))
        for name, values in starts.items():
            goal = " (goal <= 0.2 s)" if "store" in name else ""
            rows.append(
                (name + goal, "median s", statistics.median(values), typer_s, 'python -c "import typer"')
            )
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'stat':<8} {'value':>8} {'baseline':>9} {'ratio':>6}  baseline is")
    for name, stat, value, base_value, base_name in rows:
        ratio = value / base_value if base_value else float("nan")
        print(f"{name:<{width}}  {stat:<8} {value:>8.3f} {base_value:>9.3f} {ratio:>6.2f}  {base_name}")
    print(
        f"(edits per row: {args.edits}; starts per worker: {args.starts}; runs per command: {args.runs}; "
        f"store: {args.store_gb} GB; install: {args.install}; {os.cpu_count()} cores; "
        "ratio < 1 means devstack is faster)"
    )


if __name__ == "__main__":
    main()
