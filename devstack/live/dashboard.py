"""The stack's dashboard at /__devstack/: what runs, its logs, the freshness feed, the tabs, doctor.

Served by the live server (server.py) through the nginx devstack already configures: no port of
its own. Everything is pushed over the dashboard's WebSocket, and only while a dashboard is open:
with none open, the log listener only appends a block to a bounded deque and nothing samples.

    processes  sampled every second: state, PID, start time, restarts, CPU and memory (psutil),
               last line; sent only when something changed (the page counts uptimes up itself)
    logs       woken by a block, at most every 50 ms: the blocks written since, capped (a burst
               sends its newest lines and says how many it skipped), one JSON message per flush
    feed       each line of the "watcher" source, with the tabs' proofs the hub attaches; a STALE
               row stays open until a fresh line for that file (or `devstack clear-stale`) ends it
    doctor     `devstack doctor --json`, run on demand in a subprocess, its report pushed

Actions (restart a process, run doctor, clear a STALE row) are methods here; the server calls
them for the page (same origin + the per-stack token) and for the CLI (the unix socket only).
"""

from __future__ import annotations

import collections
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from devstack.live.hub import Hub
from devstack.logs import format as fmt
from devstack.stack.state import StackState

if TYPE_CHECKING:  # the supervisor is in procs/, a sibling layer: typed only, never imported
    from devstack.procs.supervisor import Supervisor

ASSETS = Path(__file__).with_name("dashboard")
FLUSH_EVERY = 0.05  # logs: 20 messages a second at most, whatever the rate of lines
SAMPLE_EVERY = 1.0  # processes: psutil once a second, only while a dashboard is open
SAMPLE_AT_REST = 5.0  # ... and every 5 s once nothing changed and nothing logged for that long
CHILDREN_EVERY = 5.0  # gunicorn's and nginx's workers: looked up again at most this often...
CHILDREN_AT_REST = 60.0  # ... and this often when nothing was logged
MAX_FLUSH_BYTES = 192 * 1024  # a flush carries at most this much of the newest lines
BACKLOG_BLOCKS = 400  # what a dashboard that opens now sees of the past
FEED_ROWS = 200
CRASH_LOOP_BACKOFF = 2.0  # three quick failures in a row: 0.5 -> 1 -> 2 s
DOCTOR_TIMEOUT = 120.0

Send = Callable[[dict[str, Any]], None]


def classify(line: str) -> tuple[str, str]:
    """A watcher line's verdict and the file it is about: ("fresh"|"stale"|"reload"|"error"|"note", rel)."""
    if line.startswith("STALE in browser  "):
        return "stale", line[len("STALE in browser  ") :].split(":", 1)[0]
    if line.startswith("STALE "):
        return "stale", line[len("STALE ") :].split(":", 1)[0]
    if line.startswith("fresh?"):
        return "stale", line.split("  ")[1] if "  " in line else ""
    if line.startswith("fresh"):
        return "fresh", line.split("  ")[1] if "  " in line else ""
    if line.startswith("reload  "):
        return "reload", line.split("  ")[1]
    if line.startswith("error shown") or line.startswith("cannot verify"):
        return "error", ""
    return "note", ""


def reload_ms(line: str) -> int | None:
    """ "reload  app.py  new code serves 60 ms after the save …" -> 60."""
    marker = "new code serves "
    if marker not in line:
        return None
    try:
        return int(line.split(marker, 1)[1].split(" ", 1)[0])
    except ValueError:
        return None


class Dashboard:
    def __init__(
        self,
        hub: Hub,
        supervisor: Supervisor[Any],
        stack_state: Callable[[], StackState],
        config_path: Path,
        doctor_argv: list[str] | None = None,
    ) -> None:
        self.hub = hub
        self.supervisor = supervisor
        self.stack_state = stack_state
        self.config_path = config_path
        self.doctor_argv = doctor_argv or [sys.executable, "-m", "devstack", "doctor", "--json"]
        self.token = secrets.token_urlsafe(32)  # the page gets it; a cross-site request cannot
        self._lock = threading.Lock()
        self._subscribers: dict[int, Send] = {}
        self._ids = 0
        self._backlog: collections.deque[tuple[str, str, float, bytes]] = collections.deque(
            maxlen=BACKLOG_BLOCKS
        )
        self._pending: list[tuple[str, str, float, bytes]] = []
        self._pending_bytes = 0
        self._skipped = 0  # lines of a burst never sent (the newest are): said in the next flush
        self._feed_pending: list[tuple[str, str, float, bytes]] = []
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.feed: collections.deque[dict[str, Any]] = collections.deque(maxlen=FEED_ROWS)
        self._feed_ids = 0
        self._proofs: dict[str, list[dict[str, Any]]] = {}  # the hub's tab proofs, by line
        self.manual_restarts: dict[str, int] = {}
        self.doctor: dict[str, Any] = {"state": "never"}
        self._procs: dict[int, psutil.Process] = {}
        self._kids: dict[int, list[int]] = {}
        self._kids_at = 0.0
        self._kids_dirty = False
        self._tabs_changed = False
        hub.watchers.append(self._hub_event)

    # -- service ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dashboard")
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # -- inputs (any thread) -----------------------------------------------------------------------
    def on_log(self, source: str, stream: str, when: float, block: bytes) -> None:
        """The log multiplexer's listener, under its lock: queue the block, nothing more."""
        item = (source, stream, when, block)
        with self._lock:
            self._backlog.append(item)
            if stream == "devstack" and source in ("watcher", "gunicorn"):
                self._feed_pending.append(item)
                self._wake.set()  # the feed and failures are shown at once
            if self._subscribers:
                self._pending.append(item)
                self._pending_bytes += len(block)
                if self._pending_bytes > 4 * MAX_FLUSH_BYTES:  # a burst: keep only the newest
                    self._trim_pending()
                self._wake.set()

    def _trim_pending(self) -> None:
        """Under the lock: keep the newest MAX_FLUSH_BYTES, count the lines dropped."""
        kept, size = [], 0
        for item in reversed(self._pending):
            if size >= MAX_FLUSH_BYTES:
                break
            kept.append(item)
            size += len(item[3])
        dropped = self._pending[: len(self._pending) - len(kept)]
        self._skipped += sum(item[3].count(b"\n") for item in dropped)
        self._pending = kept[::-1]
        self._pending_bytes = size

    def _hub_event(self, event: dict[str, Any]) -> None:
        if event.get("t") == "edit":
            self._proofs[str(event.get("line"))] = list(event.get("tabs") or [])
            if len(self._proofs) > 50:
                self._proofs.pop(next(iter(self._proofs)))
        else:
            self._tabs_changed = True
            self._wake.set()

    # -- subscribers -------------------------------------------------------------------------------
    def subscribe(self, send: Send) -> int:
        with self._lock:
            self._ids += 1
            key = self._ids
            backlog = list(self._backlog)
        send(
            {
                "t": "snapshot",
                "procs": self.processes(),
                "tabs": self.hub.tab_list(),
                "feed": list(self.feed),
                "stack": self.stack_info(),
                "doctor": self.doctor,
                "logs": _log_rows(backlog),
                "colors": {},
            }
        )
        with self._lock:
            self._subscribers[key] = send
        self._wake.set()
        return key

    def unsubscribe(self, key: int) -> None:
        with self._lock:
            self._subscribers.pop(key, None)
            if not self._subscribers:
                self._pending, self._pending_bytes, self._skipped = [], 0, 0
                self._procs.clear()
                self._kids, self._kids_at = {}, 0.0

    def _broadcast(self, message: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers.items())
        for key, send in targets:
            try:
                send(message)
            except OSError:
                self.unsubscribe(key)

    # -- the loop: runs only while a dashboard is open -----------------------------------------------
    def _loop(self) -> None:
        """Woken by what happens (a log block, a feed line, a tab), never polling: at rest it
        sleeps until the next process sample. Log blocks are flushed at most every FLUSH_EVERY,
        so a burst becomes 20 messages a second while a lone line goes out at once."""
        next_sample = 0.0
        last_flush = 0.0
        last_change = 0.0  # when a sample last differed, or a log block last went out
        # The last process list sent (an unchanged one is not sent again), and its gist.
        shown: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
        gist: object = None
        while not self._stopping:
            if not self._subscribers:
                self._wake.wait()  # nothing to do until a dashboard opens or the feed moves
                self._wake.clear()
                self._scan_feed()
                shown = gist = None
                continue
            self._wake.wait(max(0.0, next_sample - time.monotonic()))
            self._wake.clear()
            self._scan_feed()
            if self._pending:
                wait = last_flush + FLUSH_EVERY - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # batch: what arrives meanwhile goes in this same message
                last_flush = last_change = time.monotonic()
                next_sample = min(next_sample, last_flush + SAMPLE_EVERY)  # activity: sample soon
                self._flush_logs()
            if self._tabs_changed:
                self._tabs_changed = False
                self._broadcast({"t": "tabs", "tabs": self.hub.tab_list()})
            now = time.monotonic()
            if now >= next_sample:
                procs, stack = self.processes(), self.stack_info()
                if (procs, stack) != shown:
                    shown = (procs, stack)
                    self._broadcast({"t": "procs", "procs": procs, "stack": stack})
                if _gist(procs, stack) != gist:  # not a 0.1 % CPU wobble: something happened
                    gist, last_change = _gist(procs, stack), now
                resting = now - last_change > SAMPLE_AT_REST
                next_sample = now + (SAMPLE_AT_REST if resting else SAMPLE_EVERY)

    def _flush_logs(self) -> None:
        with self._lock:
            if self._pending_bytes > MAX_FLUSH_BYTES:
                self._trim_pending()
            pending, self._pending, self._pending_bytes = self._pending, [], 0
            skipped, self._skipped = self._skipped, 0
        if not pending:
            return
        self._kids_dirty = True
        self._broadcast({"t": "logs", "rows": _log_rows(pending), "skipped": skipped})

    # -- the feed ----------------------------------------------------------------------------------
    def _scan_feed(self) -> None:
        """New watcher lines (and gunicorn's boot failures) become feed rows."""
        with self._lock:
            items, self._feed_pending = self._feed_pending, []
        fresh_rows: list[dict[str, Any]] = []
        for source, _, when, block in items:
            for raw in block.decode("utf-8", "replace").splitlines():
                row = self._row(source, raw, when)
                if row is not None:
                    fresh_rows.append(row)
        if fresh_rows:
            self._broadcast({"t": "feed", "rows": fresh_rows, "resolved": self._resolved_ids()})

    def _row(self, source: str, line: str, when: float) -> dict[str, Any] | None:
        if source == "gunicorn":
            if not line.startswith("gunicorn stopped: "):
                return None
            verdict, rel = "error", "app"
        else:
            verdict, rel = classify(line)
        self._feed_ids += 1
        row = {
            "id": self._feed_ids,
            "at": when,
            "verdict": verdict,
            "file": rel,
            "line": line,
            "tabs": self._proofs.pop(line, []),
            "ms": reload_ms(line) if verdict == "reload" else None,
            "open": verdict == "stale",
        }
        if verdict in ("fresh", "reload") and rel:
            for old in self.feed:  # a fresh save of that file resolves its STALE rows
                if old["open"] and old["file"] == rel:
                    old["open"] = False
                    old["resolved_by"] = row["id"]
        self.feed.append(row)
        return row

    def _resolved_ids(self) -> list[int]:
        return [row["id"] for row in self.feed if row["verdict"] == "stale" and not row["open"]]

    def clear_stale(self, rel: str = "") -> int:
        """End the open STALE rows (of one file, or all): the CLI's `clear-stale` and the page's button."""
        cleared = 0
        for row in self.feed:
            if row["open"] and (not rel or row["file"] == rel):
                row["open"] = False
                row["resolved_by"] = "cleared"
                cleared += 1
        self._broadcast({"t": "feed", "rows": [], "resolved": self._resolved_ids()})
        return cleared

    def open_stale(self) -> list[dict[str, Any]]:
        return [row for row in self.feed if row["open"]]

    # -- processes ---------------------------------------------------------------------------------
    def processes(self) -> list[dict[str, Any]]:
        crashes = self.stack_state().extra.get("crashes", {})
        out = []
        clock = self.supervisor.clock()
        offset = time.time() - clock  # the supervisor's clock -> wall-clock time
        for name, child in list(self.supervisor.children.items()):
            running = child.running()
            pid = child.pid if running else None
            cpu, rss = self._usage(pid)
            tail = list(getattr(child, "tail", ()))
            crashed = int(crashes.get(name, {}).get("restarts", 0)) if isinstance(crashes, dict) else 0
            out.append(
                {
                    "name": name,
                    "state": child.state.value if running or child.state.value != "running" else "exited",
                    "pid": pid,
                    "started": round(offset + child.started_at, 1) if running else None,
                    "restarts": crashed + self.manual_restarts.get(name, 0),
                    "crashes": crashed,
                    "cpu": cpu,
                    "rss": rss,
                    "last": tail[-1][-300:] if tail else "",
                    "crash_loop": child.state.value == "backoff" and child.backoff >= CRASH_LOOP_BACKOFF,
                    "retry_in": round(child.retry_at - clock, 1) if child.retry_at is not None else None,
                }
            )
        return out

    def _usage(self, pid: int | None) -> tuple[float | None, int | None]:
        """CPU % (since the last sample) and resident memory of a process and its children."""
        if pid is None:
            return None, None
        try:
            root = self._proc(pid)
            members = [root, *(self._proc(kid) for kid in self._children(root))]
            cpu = rss = 0.0
            for proc in members:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            return round(cpu, 1), int(rss) >> 18 << 18  # quarter-MiB steps: noise is not a change
        except psutil.Error:
            return None, None

    def _children(self, root: psutil.Process) -> list[int]:
        """A process's descendants (gunicorn's and nginx's workers). Finding them reads the stat
        file of every process on the machine (~4 ms on a small one), so it is done once for all
        the processes, and again only for a new PID, after log activity (a reload forks new
        workers, and says so), or every CHILDREN_AT_REST."""
        now = time.monotonic()
        age = now - self._kids_at
        stale = age > CHILDREN_AT_REST or (self._kids_dirty and age > CHILDREN_EVERY)
        if stale or root.pid not in self._kids:
            self._kids = descendants_of([c.pid for c in self.supervisor.children.values() if c.pid])
            self._kids_at, self._kids_dirty = now, False
        return self._kids.get(root.pid, [])

    def _proc(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None or not proc.is_running():
            proc = self._procs[pid] = psutil.Process(pid)
            proc.cpu_percent(None)  # the first call only starts the measure
        return proc

    def stack_info(self) -> dict[str, Any]:
        current = self.stack_state()
        return {
            "status": current.status,
            "url": current.url,
            "error": current.error,
            "app_error": self.hub.overlay,
            "ready_seconds": current.ready_seconds,
            "started_at": current.started_at,
        }

    # -- actions -----------------------------------------------------------------------------------
    def restart_error(self, name: str) -> str:
        """Why NAME cannot be restarted ("" when it can)."""
        if name in self.supervisor.children:
            return ""
        return f"no process named {name!r} (these run: {', '.join(self.supervisor.children)})"

    def restart(self, name: str, after: float = 0.0) -> str:
        """Restart one process on the supervisor's thread. "" when asked, else why not. after:
        seconds to wait first (the page's request: nginx must deliver the answer before a
        restart of nginx itself ends the connection that carries it)."""
        error = self.restart_error(name)
        if error:
            return error
        self.manual_restarts[name] = self.manual_restarts.get(name, 0) + 1

        def ask() -> None:
            self.supervisor.call_soon(
                lambda: self.supervisor.restart(name, "asked from the dashboard or CLI")
            )

        if after > 0:
            timer = threading.Timer(after, ask)
            timer.daemon = True
            timer.start()
        else:
            ask()
        return ""

    def run_doctor(self) -> bool:
        """Start `devstack doctor --json` in the background; False when one runs already."""
        with self._lock:
            if self.doctor.get("state") == "running":
                return False
            self.doctor = {"state": "running", "started": time.time()}
        self._broadcast({"t": "doctor", "doctor": self.doctor})
        threading.Thread(target=self._doctor, daemon=True, name="dashboard-doctor").start()
        return True

    def _doctor(self) -> None:
        started = time.time()
        argv = [*self.doctor_argv, "--config", str(self.config_path)]
        try:
            done = subprocess.run(
                argv,
                cwd=self.config_path.parent,
                capture_output=True,
                timeout=DOCTOR_TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            report = json.loads(done.stdout)
            result: dict[str, Any] = {"state": "done", "report": report}
        except subprocess.TimeoutExpired:
            result = {"state": "failed", "error": f"doctor did not finish in {DOCTOR_TIMEOUT:.0f} s"}
        except (OSError, ValueError) as exc:
            result = {"state": "failed", "error": f"doctor gave no report: {exc}"}
        result.update(started=started, took=round(time.time() - started, 2))
        with self._lock:
            self.doctor = result
        self._broadcast({"t": "doctor", "doctor": result})


def descendants_of(roots: list[int]) -> dict[int, list[int]]:
    """Every root's descendants, from one pass over the process table."""
    by_parent: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        by_parent.setdefault(proc.info["ppid"], []).append(proc.pid)
    found: dict[int, list[int]] = {}
    for root in roots:
        kids, todo = [], [root]
        while todo:
            more = by_parent.get(todo.pop(), [])
            kids += more
            todo += more
        found[root] = kids
    return found


def _gist(procs: list[dict[str, Any]], stack: dict[str, Any]) -> object:
    """What counts as a change for the sampling rate: whole CPU percents and MiB, not wobbles."""
    keep = [
        (
            p["name"],
            p["state"],
            p["pid"],
            p["restarts"],
            round(p["cpu"] or 0),
            (p["rss"] or 0) >> 20,
            p["last"],
        )
        for p in procs
    ]
    return keep, stack


def _log_rows(items: list[tuple[str, str, float, bytes]]) -> list[list[Any]]:
    """[[time, source, stream, color, "line\\nline\\n…"], …]: one row per block (the page splits)."""
    return [
        [
            round(when, 3),
            source,
            stream,
            fmt.color_for(source).decode(),
            fmt.strip_ansi(block).decode("utf-8", "replace"),
        ]
        for source, stream, when, block in items
        if source
    ]
