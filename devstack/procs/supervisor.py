"""The supervisor: starts the plan's processes, restarts them with backoff, stops them cleanly.

Everything that changes a child happens on the supervisor's own thread, fed by one event queue
(exits, file changes, signals, timers), so there is never a race between a restart and a stop.
"""

from __future__ import annotations

import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from devstack.logs.sink import Sink
from devstack.procs import retire
from devstack.procs.child import Child, ChildState
from devstack.stack.plan import ProcessSpec, is_app
from devstack.system import ports

# gunicorn's arbiter exit codes when the app cannot even be imported.
BOOT_ERRORS = {3: "Worker failed to boot", 4: "App failed to load"}
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a process that ran this long has its backoff reset
# A rolling reload of several nodes HUPs the next node once the last one's new worker said it
# serves (gunicorn_conf.py's worker-ready, through the live-reload server), or after this long.
ROLL_WAIT = 2.0


class Service(Protocol):
    """Something that runs beside the children (a file watcher): started and stopped with them."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Supervised(Protocol):
    """What the supervisor needs of a child (Child, or a scripted fake in tests)."""

    spec: ProcessSpec
    state: ChildState
    started_at: float
    backoff: float
    retry_at: float | None

    @property
    def pid(self) -> int | None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def running(self) -> bool: ...
    def cause(self) -> str: ...
    def send(self, sig: signal.Signals) -> None: ...
    def signal_workers(self, sig: signal.Signals) -> int: ...
    def workers(self) -> list[Any]: ...


C = TypeVar("C", bound=Supervised)
# How a child is made: (spec, sink, on_exit) -> child. on_exit(child, code) may run on any thread.
ChildFactory = Callable[[ProcessSpec, Sink, Callable[[C, int], None]], C]


# The events the loop handles, one type per kind. Any thread may post them.
@dataclass(frozen=True)
class Exited:
    """A child exited with this code."""

    name: str
    code: int


@dataclass(frozen=True)
class Changed:
    """The app's code changed: reload it."""

    why: str


@dataclass(frozen=True)
class Stop:
    """Stop the stack, for this reason."""

    reason: str


@dataclass(frozen=True)
class Call:
    """Run fn on the supervisor's thread."""

    fn: Callable[[], None]


@dataclass(frozen=True)
class Tick:
    """No event within the timeout: only the due retries run."""


Event = Exited | Changed | Stop | Call | Tick


class Supervisor(Generic[C]):
    @overload
    def __init__(
        self: Supervisor[Child],
        specs: list[ProcessSpec],
        sink: Sink,
        on_started: Callable[[str, int], None] | None = None,
        reload_by_signal: bool = True,
        reload_kills_workers: bool = False,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_exited: Callable[[str, int, str], None] | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        specs: list[ProcessSpec],
        sink: Sink,
        on_started: Callable[[str, int], None] | None = None,
        reload_by_signal: bool = True,
        reload_kills_workers: bool = False,
        clock: Callable[[], float] = time.monotonic,
        *,
        child_factory: ChildFactory[C],
        on_exited: Callable[[str, int, str], None] | None = None,
    ) -> None: ...
    def __init__(
        self,
        specs: list[ProcessSpec],
        sink: Sink,
        on_started: Callable[[str, int], None] | None = None,
        reload_by_signal: bool = True,
        reload_kills_workers: bool = False,
        clock: Callable[[], float] = time.monotonic,
        *,
        child_factory: ChildFactory[Any] = Child,
        on_exited: Callable[[str, int, str], None] | None = None,
    ) -> None:
        self.sink = sink
        self.on_started = on_started or (lambda name, pid: None)
        # Told of every exit nobody asked for: (name, exit code, its last error line).
        self.on_exited = on_exited or (lambda name, code, line: None)
        self.reload_by_signal = reload_by_signal
        self.reload_kills_workers = reload_kills_workers
        self.clock = clock  # seams (honcho's _clock / _child_ctor): tests script both
        self.child_factory: ChildFactory[C] = child_factory
        self._roll_why = ""
        self.children: dict[str, C] = {}
        for spec in specs:
            self.children[spec.name] = child_factory(spec, sink, self._exited)
        self.services: list[Service] = []
        self._events: queue.Queue[Event] = queue.Queue()
        self._stopping = False
        # A change was signalled to the gunicorn that runs now (HUP, or its workers killed), and
        # nothing proves it loaded it: a master still booting (no handlers yet) or halting after
        # "Worker failed to boot" drops a HUP. If that run exits, the change is started at once.
        self._change_sent: set[str] = set()  # the app servers (gunicorn, gunicorn.N) it was sent to
        self.stop_reason = ""
        # A rolling reload of app.nodes > 1: the nodes still to reload, the one reloading now
        # and when to go on without its worker-ready. Nodes announce themselves only with live
        # reload on (node_ready); the timeout keeps the roll going without it.
        self.roll_on_ready = False
        self._rolling: list[str] = []
        self._roll_current = ""
        self._roll_deadline: float | None = None

    # -- called from any thread ----------------------------------------------------------------
    def _exited(self, child: C, code: int) -> None:
        self._events.put(Exited(child.spec.name, code))

    def app_changed(self, why: str = "") -> None:
        """A watched app file changed: reload gunicorn, or start it again if it is down."""
        self._events.put(Changed(why))

    def node_ready(self, node: int) -> None:
        """A node's new gunicorn worker serves (any thread): the rolling reload goes on."""
        self.call_soon(lambda: self._node_ready(node))

    @property
    def stop_requested(self) -> bool:
        return self._stopping

    def request_stop(self, reason: str = "") -> None:
        self._events.put(Stop(reason))

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run fn on the supervisor thread (where children may be started and stopped)."""
        self._events.put(Call(fn))

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            self.request_stop(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, handler)

    # -- the loop (the thread that calls run) ----------------------------------------------------
    def start_all(self, after_first: Callable[[], None] | None = None) -> None:
        """Start every child in plan order, then the services. after_first runs once the first
        child (the app, slowest to answer; every node of several) has started: checks that can
        overlap its boot."""
        children = list(self.children.values())
        # The app's processes lead the plan (one gunicorn, or every node of app.nodes > 1): all
        # of them are spawned before after_first, so each node's boot overlaps the rest.
        leading = next((i for i, c in enumerate(children) if not is_app(c.spec.name)), len(children))
        for index, child in enumerate(children):
            self._start(child)
            if index == max(leading, 1) - 1 and after_first is not None:
                after_first()
        for service in self.services:
            service.start()

    def _start(self, child: C) -> None:
        child.state = ChildState.STARTING
        try:
            child.start()
        except OSError as exc:
            self.sink.note(child.spec.name, f"cannot start {child.spec.argv[0]}: {exc.strerror}")
            self._schedule_retry(child)
            return
        child.state = ChildState.RUNNING
        child.started_at = self.clock()
        self._change_sent.discard(child.spec.name)  # a fresh start imports the code as it is now
        assert child.pid is not None
        self.on_started(child.spec.name, child.pid)

    def run(self, until: Callable[[], bool] | None = None) -> str:
        """Supervise until a stop is requested; then stop everything. Returns the stop reason."""
        try:
            while not self._stopping:
                self.step(self._next_timer())
                if until is not None and until():
                    break
        finally:
            # Whatever went wrong above, the children are stopped: never leave them running.
            self.shutdown()
        return self.stop_reason

    def step(self, timeout: float) -> None:
        """Handle the next event (waiting up to timeout for one), then the retries that are due."""
        try:
            event: Event = self._events.get(timeout=timeout)
        except queue.Empty:
            event = Tick()
        self._handle(event)

    def _next_timer(self) -> float:
        due = [c.retry_at for c in self.children.values() if c.retry_at is not None]
        if self._roll_deadline is not None:
            due.append(self._roll_deadline)
        if not due:
            return 0.5
        return max(0.0, min(due) - self.clock())

    def _handle(self, event: Event) -> None:
        match event:
            case Stop(reason):
                self._stopping = True
                self.stop_reason = reason or "stop requested"
            case Exited(name, code):
                exited = self.children.get(name)
                if exited is not None:  # None: removed by a config change
                    self._on_exit(exited, code)
            case Changed(why):
                self._on_change(why)
            case Call(fn):
                try:
                    fn()
                except Exception as exc:  # a failing callback must not take the supervisor down
                    self.sink.note(
                        "devstack",
                        f"internal error in {getattr(fn, '__name__', fn)}: {type(exc).__name__}: {exc}",
                    )
            case Tick():
                pass
        now = self.clock()
        if self._roll_deadline is not None and now >= self._roll_deadline and not self._stopping:
            self._roll_next()
        for name, child in list(self.children.items()):
            if child.retry_at is not None and child.retry_at <= now and not self._stopping:
                child.retry_at = None
                if not child.running():
                    self.sink.note(name, "restarting")
                    self._start(child)

    def _on_exit(self, child: C, code: int) -> None:
        name = child.spec.name
        if child.state is ChildState.STOPPING or self._stopping:
            return
        if child.running():  # a stale exit event from an earlier run
            return
        child.state = ChildState.EXITED
        if self.clock() - child.started_at > STABLE_AFTER:
            child.backoff = 0.0
        cause = _port_owner(child.cause())
        if is_app(name) and code in BOOT_ERRORS:
            reason = BOOT_ERRORS[code]
            self.sink.note(
                name,
                f"gunicorn stopped: {reason}{' — ' + cause if cause else ''}. "
                "nginx stays up; devstack starts gunicorn again as soon as an app "
                "file changes (and retries with backoff).",
            )
        else:
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            self.sink.note(name, f"{name} {how}{' — ' + cause if cause and code > 0 else ''}")
        tail = list(getattr(child, "tail", ()))  # a scripted child (tests) may keep none
        self.on_exited(name, code, cause or (tail[-1].strip()[:200] if tail else ""))
        if name in self._change_sent and (code in BOOT_ERRORS or code == -signal.SIGHUP):
            # How a master drops a change's HUP: halting after "Worker failed to boot" (code 3,
            # the HUP queued and never handled), or killed by it while booting or shutting down
            # (no handler). The soak saw a fix wait 30 s for the backoff: start it now, as a
            # change to a stopped gunicorn would. Any other exit is a crash, and backs off.
            self._start_for_change(child, "the last change may not have been loaded")
            return
        self._schedule_retry(child)

    def _schedule_retry(self, child: C) -> None:
        # 0.5 s, then doubled on each failure up to 30 s; reset by a stable run or a fresh start.
        delay = min(max(child.backoff * 2, BACKOFF_FIRST), BACKOFF_MAX)
        child.backoff = delay
        child.retry_at = self.clock() + delay
        child.state = ChildState.BACKOFF
        self.sink.note(child.spec.name, f"next start in {delay:.1f} s")

    def _say_later(self, line: str, source: str = "gunicorn") -> None:
        """A gunicorn line from another thread, said on this one."""
        self.call_soon(lambda: self.sink.note(source, line))

    def _apps(self) -> list[C]:
        return [child for name, child in self.children.items() if is_app(name)]

    def _on_change(self, why: str) -> None:
        apps = self._apps()
        if len(apps) > 1:
            self._on_change_nodes(apps, why)
            return
        child = self.children.get("gunicorn")
        if child is None or self._stopping:
            return
        if child.running():
            self._reload(child, why)
            return
        self._start_for_change(child, why)

    def _start_for_change(self, child: C, why: str) -> None:
        child.retry_at, child.backoff = None, 0.0
        self.sink.note(child.spec.name, f"starting again{' (' + why + ')' if why else ''}")
        self._start(child)

    def _on_change_nodes(self, apps: list[C], why: str) -> None:
        """app.nodes > 1: nodes that are down start again; the running ones reload one after
        another (rolling), so every other node keeps serving while one imports the new code."""
        if self._stopping:
            return
        running = []
        for child in apps:
            if child.running():
                running.append(child.spec.name)
                continue
            child.retry_at, child.backoff = None, 0.0
            self.sink.note(child.spec.name, f"starting again{' (' + why + ')' if why else ''}")
            self._start(child)
        if not running:
            return
        if not (self.reload_by_signal and self.roll_on_ready):
            for name in running:  # no worker-ready to wait for: all at once
                self._reload(self.children[name], why)
            return
        self._rolling = running
        self._roll_why = why
        self._roll_next()

    def _roll_next(self) -> None:
        self._roll_deadline = None
        self._roll_current = ""
        while self._rolling:
            name = self._rolling.pop(0)
            child = self.children.get(name)
            if child is None or not child.running():
                continue
            self._roll_current = name
            self._roll_deadline = self.clock() + ROLL_WAIT
            self._reload(child, self._roll_why)
            return

    def _node_ready(self, node: int) -> None:
        if self._roll_current and self._roll_current == f"gunicorn.{node}":
            self._roll_next()

    def _reload(self, child: C, why: str) -> None:
        name = child.spec.name
        if child.running() and self.reload_by_signal:
            self._change_sent.add(name)
            # HUP: the master starts fresh workers (re-importing the app), then retires the
            # old ones gracefully. gevent's graceful stop holds the new worker back for
            # 0.3-0.7 s, so there the old worker is killed and the master forks a new one
            # at once; the listening socket stays open in the master either way.
            if self.reload_kills_workers:
                child.signal_workers(signal.SIGKILL)
            else:
                old = child.workers()
                child.send(signal.SIGHUP)
                if old:  # an old worker an open websocket holds is stopped after the grace
                    retire.watch(old, lambda line: self._say_later(line, name))
            self.sink.note(name, f"reloading{' (' + why + ')' if why else ''}")

    # -- live reconfiguration (call on the supervisor thread, e.g. through call_soon) -----------
    def replace(self, spec: ProcessSpec, why: str = "") -> None:
        """Run spec instead of the running process of that name (or start it, if it is new)."""
        if self._stopping:
            return
        child = self.children.get(spec.name)
        if child is None:
            child = self.children[spec.name] = self.child_factory(spec, self.sink, self._exited)
            self.sink.note(spec.name, f"starting{' (' + why + ')' if why else ''}")
        else:
            self.sink.note(spec.name, f"restarting{' (' + why + ')' if why else ''}")
            self._stop(child)
            child.spec = spec
        child.retry_at, child.backoff = None, 0.0
        self._start(child)

    def restart(self, name: str, why: str = "") -> None:
        """Stop one process and start it again at once (`devstack restart NAME`, the dashboard).
        gunicorn is restarted whole (a new master), not reloaded: what a stuck app needs."""
        child = self.children.get(name)
        if child is None or self._stopping:
            return
        self.sink.note(name, f"restarting{' (' + why + ')' if why else ''}")
        if child.running():
            self._stop(child)
        child.retry_at, child.backoff = None, 0.0
        self._start(child)

    def remove(self, name: str, why: str = "") -> None:
        if self._stopping:  # shutdown stops every child anyway
            return
        child = self.children.pop(name, None)
        if child is None:
            return
        child.retry_at, child.backoff = None, 0.0
        self.sink.note(name, f"stopping{' (' + why + ')' if why else ''}")
        self._stop(child)

    def _stop(self, child: C) -> None:
        child.state = ChildState.STOPPING  # its exit event is expected now, not a crash
        child.stop()
        child.state = ChildState.EXITED

    def shutdown(self) -> None:
        self._stopping = True
        for service in self.services:
            try:
                service.stop()
            except Exception as exc:  # a watcher failing to stop must not keep children alive
                self.sink.note("devstack", f"stopping a watcher failed: {exc}")
        # nginx first and on its own (TERM: it exits at once), so no request reaches a
        # half-stopped app; then the rest in parallel.
        rest = [c for c in self.children.values() if c.spec.name != "nginx"]
        nginx = self.children.get("nginx")
        if nginx is not None:
            self._stop(nginx)
        threads = [threading.Thread(target=self._stop, args=(child,), daemon=True) for child in rest]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10.0)


def _port_owner(cause: str) -> str:
    """A port someone else took while we restarted (a hostile neighbour): name who holds it."""
    # gunicorn: "Connection in use: ('127.0.0.1', 5001)", then "Can't connect to (...)".
    match = re.search(r"(?:in use|connect to).*\('[^']*', (\d+)\)", cause)
    if match is None:
        return cause
    owner = ports.port_owner(int(match.group(1)))
    return f"{cause} — held by {owner.describe()}" if owner else cause
