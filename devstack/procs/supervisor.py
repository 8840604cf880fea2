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
from typing import Protocol

from devstack import probes
from devstack.logs.sink import Sink
from devstack.plan import ProcessSpec
from devstack.procs.child import Child

# gunicorn's arbiter exit codes when the app cannot even be imported.
BOOT_ERRORS = {3: "Worker failed to boot", 4: "App failed to load"}
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a process that ran this long has its backoff reset


class Service(Protocol):
    """Something that runs beside the children (a file watcher): started and stopped with them."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class _Event:
    kind: str  # exited | changed | stop | timer | call
    name: str = ""
    code: int = 0
    payload: object = None


class Supervisor:
    def __init__(
        self,
        specs: list[ProcessSpec],
        sink: Sink,
        on_started: Callable[[str, int], None] | None = None,
        reload_by_signal: bool = True,
        reload_kills_workers: bool = False,
    ) -> None:
        self.sink = sink
        self.on_started = on_started or (lambda name, pid: None)
        self.reload_by_signal = reload_by_signal
        self.reload_kills_workers = reload_kills_workers
        self.children: dict[str, Child] = {}
        for spec in specs:
            self.children[spec.name] = Child(spec, sink, self._exited)
        self.services: list[Service] = []
        self._events: queue.Queue[_Event] = queue.Queue()
        self._backoff: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        self._stopping = False
        self.stop_reason = ""
        self.restarts: dict[str, int] = {name: 0 for name in self.children}
        self._thread: threading.Thread | None = None

    # -- called from any thread ----------------------------------------------------------------
    def _exited(self, child: Child, code: int) -> None:
        self._events.put(_Event("exited", child.spec.name, code))

    def app_changed(self, why: str = "") -> None:
        """A watched app file changed: reload gunicorn, or start it again if it is down."""
        self._events.put(_Event("changed", "gunicorn", payload=why))

    @property
    def stop_requested(self) -> bool:
        return self._stopping

    def request_stop(self, reason: str = "") -> None:
        self._events.put(_Event("stop", payload=reason))

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run fn on the supervisor thread (where children may be started and stopped)."""
        self._events.put(_Event("call", payload=fn))

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            self.request_stop(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, handler)

    # -- the loop (the thread that calls run) ----------------------------------------------------
    def start_all(self, after_first: Callable[[], None] | None = None) -> None:
        """Start every child in plan order, then the services. after_first runs once the first
        child (the app, slowest to answer) has started: checks that can overlap its boot."""
        for index, child in enumerate(self.children.values()):
            self._start(child)
            if index == 0 and after_first is not None:
                after_first()
        for service in self.services:
            service.start()

    def _start(self, child: Child) -> None:
        try:
            child.start()
        except OSError as exc:
            self.sink.note(child.spec.name, f"cannot start {child.spec.argv[0]}: {exc.strerror}")
            self._schedule_retry(child.spec.name)
            return
        assert child.pid is not None
        self.on_started(child.spec.name, child.pid)

    def run(self, until: Callable[[], bool] | None = None) -> str:
        """Supervise until a stop is requested; then stop everything. Returns the stop reason."""
        try:
            while not self._stopping:
                timeout = self._next_timer()
                try:
                    event = self._events.get(timeout=timeout)
                except queue.Empty:
                    event = _Event("timer")
                self._handle(event)
                if until is not None and until():
                    break
        finally:
            # Whatever went wrong above, the children are stopped: never leave them running.
            self.shutdown()
        return self.stop_reason

    def _next_timer(self) -> float:
        if not self._retry_at:
            return 0.5
        return max(0.0, min(self._retry_at.values()) - time.monotonic())

    def _handle(self, event: _Event) -> None:
        if event.kind == "stop":
            self._stopping = True
            self.stop_reason = str(event.payload or "stop requested")
        elif event.kind == "exited":
            exited = self.children.get(event.name)
            if exited is not None:  # None: removed by a config change
                self._on_exit(exited, event.code)
        elif event.kind == "changed":
            self._on_change(str(event.payload or ""))
        elif event.kind == "call":
            fn = event.payload
            assert callable(fn)
            try:
                fn()
            except Exception as exc:  # a failing callback must not take the supervisor down
                self.sink.note(
                    "devstack",
                    f"internal error in {getattr(fn, '__name__', fn)}: {type(exc).__name__}: {exc}",
                )
        now = time.monotonic()
        for name, when in list(self._retry_at.items()):
            if when <= now and not self._stopping:
                del self._retry_at[name]
                child = self.children.get(name)
                if child is not None and not child.running():
                    self.restarts[name] += 1
                    self.sink.note(name, "restarting")
                    self._start(child)

    def _on_exit(self, child: Child, code: int) -> None:
        name = child.spec.name
        if child.stopping or self._stopping:
            return
        if child.running():  # a stale exit event from an earlier run
            return
        ran = time.monotonic() - child.started_at
        if ran > STABLE_AFTER:
            self._backoff.pop(name, None)
        cause = _port_owner(child.cause())
        if name == "gunicorn" and code in BOOT_ERRORS:
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
        self._schedule_retry(name)

    def _schedule_retry(self, name: str) -> None:
        delay = self._backoff.get(name, BACKOFF_FIRST / 2) * 2
        delay = min(max(delay, BACKOFF_FIRST), BACKOFF_MAX)
        self._backoff[name] = delay
        self._retry_at[name] = time.monotonic() + delay
        self.sink.note(name, f"next start in {delay:.1f} s")

    def _on_change(self, why: str) -> None:
        child = self.children.get("gunicorn")
        if child is None or self._stopping:
            return
        if child.running():
            if self.reload_by_signal:
                # HUP: the master starts fresh workers (re-importing the app), then retires the
                # old ones gracefully. gevent's graceful stop holds the new worker back for
                # 0.3-0.7 s, so there the old worker is killed and the master forks a new one
                # at once; the listening socket stays open in the master either way.
                if self.reload_kills_workers:
                    child.signal_workers(signal.SIGKILL)
                else:
                    child.send(signal.SIGHUP)
                self.sink.note("gunicorn", f"reloading{' (' + why + ')' if why else ''}")
            return
        self._retry_at.pop("gunicorn", None)
        self._backoff.pop("gunicorn", None)
        self.restarts["gunicorn"] += 1
        self.sink.note("gunicorn", f"starting again{' (' + why + ')' if why else ''}")
        self._start(child)

    # -- live reconfiguration (call on the supervisor thread, e.g. through call_soon) -----------
    def replace(self, spec: ProcessSpec, why: str = "") -> None:
        """Run spec instead of the running process of that name (or start it, if it is new)."""
        if self._stopping:
            return
        child = self.children.get(spec.name)
        if child is None:
            child = self.children[spec.name] = Child(spec, self.sink, self._exited)
            self.restarts[spec.name] = 0
            self.sink.note(spec.name, f"starting{' (' + why + ')' if why else ''}")
        else:
            self.sink.note(spec.name, f"restarting{' (' + why + ')' if why else ''}")
            child.stop()
            child.spec = spec
            self.restarts[spec.name] += 1
        self._retry_at.pop(spec.name, None)
        self._backoff.pop(spec.name, None)
        self._start(child)

    def remove(self, name: str, why: str = "") -> None:
        child = self.children.pop(name, None)
        if child is None:
            return
        self._retry_at.pop(name, None)
        self._backoff.pop(name, None)
        self.sink.note(name, f"stopping{' (' + why + ')' if why else ''}")
        child.stop()

    def shutdown(self) -> None:
        self._stopping = True
        for service in self.services:
            try:
                service.stop()
            except Exception as exc:  # a watcher failing to stop must not keep children alive
                self.sink.note("devstack", f"stopping a watcher failed: {exc}")
        # nginx first, so no request reaches a half-stopped app; then the rest in parallel.
        order = sorted(self.children.values(), key=lambda c: c.spec.name != "nginx")
        threads = [threading.Thread(target=child.stop, daemon=True) for child in order]
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
    owner = probes.port_owner(int(match.group(1)))
    return f"{cause} — held by {owner.describe()}" if owner else cause
