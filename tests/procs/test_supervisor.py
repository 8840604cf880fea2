"""The supervisor's policy replayed from scripted histories: a fake clock, fake children, the real
Supervisor. No process starts and no thread waits: each event is fed and handled with step(0)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.procs.child import ChildState
from devstack.procs.supervisor import BACKOFF_MAX, STABLE_AFTER, Supervisor
from devstack.stack.plan import ProcessSpec

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSink:
    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def feed(self, source: str, stream: str, data: bytes) -> None:
        raise AssertionError("a fake child writes no output")

    def end(self, source: str, stream: str) -> None:
        pass

    def note(self, source: str, message: str) -> None:
        self.notes.append((source, message))

    def close(self) -> None:
        pass

    def said(self, text: str) -> list[str]:
        return [f"{source}: {message}" for source, message in self.notes if text in message]


class FakeChild:
    """Does what the script says: start() succeeds (or raises the next queued error); exit(code)
    reports an exit as Child's wait thread would; stop() records the order it was asked in."""

    stop_order: list[str]

    def __init__(self, spec: ProcessSpec, sink: FakeSink, on_exit: Callable[[FakeChild, int], None]) -> None:
        self.spec = spec
        self.on_exit = on_exit
        self.state = ChildState.EXITED
        self.started_at = 0.0
        self.backoff = 0.0
        self.retry_at: float | None = None
        self.alive = False
        self.starts = 0
        self.start_errors: list[OSError] = []
        self.signals: list[signal.Signals] = []
        self.worker_signals: list[signal.Signals] = []
        self.last_words = ""

    @property
    def pid(self) -> int | None:
        return 4000 + self.starts if self.alive else None

    def start(self) -> None:
        if self.start_errors:
            raise self.start_errors.pop(0)
        self.alive = True
        self.starts += 1

    def stop(self) -> None:
        self.stop_order.append(self.spec.name)
        if self.alive:
            self.exit(-signal.SIGTERM)

    def exit(self, code: int) -> None:
        self.alive = False
        self.on_exit(self, code)

    def running(self) -> bool:
        return self.alive

    def cause(self) -> str:
        return self.last_words

    def send(self, sig: signal.Signals) -> None:
        self.signals.append(sig)

    def signal_workers(self, sig: signal.Signals) -> int:
        self.worker_signals.append(sig)
        return 1

    def workers(self) -> list[Any]:
        return []  # no real processes here: nothing for retire.py to watch


def spec(name: str, tag: str = "") -> ProcessSpec:
    return ProcessSpec(name=name, argv=[name, tag] if tag else [name], cwd=Path("."))


class Rig:
    def __init__(self, names: tuple[str, ...] = ("gunicorn", "nginx"), kill_workers: bool = False) -> None:
        self.clock = FakeClock()
        self.sink = FakeSink()
        self.started: list[tuple[str, int]] = []
        self.stop_order: list[str] = []

        def make(spec: ProcessSpec, sink: object, on_exit: Callable[[FakeChild, int], None]) -> FakeChild:
            child = FakeChild(spec, self.sink, on_exit)
            child.stop_order = self.stop_order
            return child

        self.sup = Supervisor(
            [spec(n) for n in names],
            self.sink,
            on_started=lambda name, pid: self.started.append((name, pid)),
            reload_kills_workers=kill_workers,
            clock=self.clock,
            child_factory=make,
        )

    def child(self, name: str) -> FakeChild:
        return self.sup.children[name]

    def state(self, name: str) -> ChildState:  # a call: mypy would keep a narrowed attribute
        return self.child(name).state

    def step(self) -> None:
        self.sup.step(0)


def test_boot_error_then_app_change_restarts_at_once_with_backoff_reset() -> None:
    rig = Rig()
    rig.sup.start_all()
    gunicorn = rig.child("gunicorn")
    gunicorn.exit(3)
    rig.step()
    assert rig.sink.said("gunicorn stopped: Worker failed to boot. nginx stays up")
    assert rig.sink.said("next start in 0.5 s")
    assert gunicorn.state is ChildState.BACKOFF and gunicorn.backoff == 0.5
    rig.sup.app_changed("app.py changed")
    rig.step()  # no time passed: the change alone starts it
    assert gunicorn.starts == 2 and rig.state("gunicorn") is ChildState.RUNNING
    assert (gunicorn.backoff, gunicorn.retry_at) == (0.0, None)
    assert rig.sink.said("starting again (app.py changed)")
    assert rig.child("nginx").starts == 1


@pytest.mark.parametrize("kill_workers", [False, True])
@pytest.mark.parametrize("code", [3, -signal.SIGHUP], ids=["halting", "booting"])
def test_a_change_sent_to_a_gunicorn_that_then_dies_is_started_at_once(kill_workers: bool, code: int) -> None:
    """The soak's miss: a fix's HUP reached a master that was halting after "Worker failed to
    boot" (code 3) or still booting (killed by the HUP): the change must not wait for a backoff
    grown by earlier failures (it waited 30 s)."""
    rig = Rig(kill_workers=kill_workers)
    rig.sup.start_all()
    gunicorn = rig.child("gunicorn")
    for _ in range(4):  # broken code left in place: each retry fails within seconds of its start
        gunicorn.exit(3)
        rig.step()
        rig.clock.advance(gunicorn.backoff)
        rig.step()
    assert gunicorn.backoff == 4.0 and gunicorn.starts == 5 and gunicorn.running()
    rig.sup.app_changed("app.py")
    rig.step()
    assert gunicorn.signals or gunicorn.worker_signals  # sent as a signal: it may be dropped
    gunicorn.exit(code)
    rig.step()  # no time passes: the change is started now, not in 8 s
    assert gunicorn.starts == 6 and rig.state("gunicorn") is ChildState.RUNNING
    assert (gunicorn.backoff, gunicorn.retry_at) == (0.0, None)
    assert rig.sink.said("starting again (the last change may not have been loaded)")
    assert not rig.sink.said("next start in 8.0 s")
    # Once: the next failure with no change since backs off as before (no spin).
    gunicorn.exit(3)
    rig.step()
    assert gunicorn.starts == 6 and gunicorn.retry_at is not None and gunicorn.backoff == 0.5


def test_an_exit_with_no_change_since_the_start_still_backs_off() -> None:
    rig = Rig()
    rig.sup.start_all()
    gunicorn = rig.child("gunicorn")
    rig.sup.app_changed("app.py")
    rig.step()
    gunicorn.exit(3)
    rig.step()
    assert gunicorn.starts == 2  # the change's own start
    gunicorn.exit(-signal.SIGKILL)  # a crash of that run, which no change reached
    rig.step()
    assert gunicorn.starts == 2 and rig.sink.said("next start in 0.5 s")


def test_a_crash_after_a_change_still_backs_off() -> None:
    """kill -9 of a master that was sent a change is a crash like any other: only the exits of
    a master that dropped the HUP (boot error, killed by the HUP itself) skip the backoff."""
    rig = Rig()
    rig.sup.start_all()
    gunicorn = rig.child("gunicorn")
    rig.sup.app_changed("app.py")
    rig.step()
    gunicorn.exit(-signal.SIGKILL)
    rig.step()
    assert gunicorn.starts == 1 and gunicorn.retry_at is not None
    assert rig.sink.said("next start in 0.5 s") and not rig.sink.said("may not have been loaded")


def test_crash_loop_doubles_the_delay_up_to_the_cap() -> None:
    rig = Rig(("worker",))
    rig.sup.start_all()
    worker = rig.child("worker")
    delays = []
    for _ in range(9):
        worker.exit(1)
        rig.step()
        delays.append(worker.backoff)
        rig.clock.advance(worker.backoff - 0.01)
        rig.step()
        assert not worker.running()  # not before its time
        rig.clock.advance(0.01)
        rig.step()
        assert worker.running()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]
    assert rig.sink.said("worker exited with code 1") and rig.sink.said("next start in 30.0 s")
    assert worker.starts == 10


def test_a_stable_run_resets_the_backoff() -> None:
    rig = Rig(("worker",))
    rig.sup.start_all()
    worker = rig.child("worker")
    for _ in range(3):  # 0.5, 1, 2
        worker.exit(1)
        rig.step()
        rig.clock.advance(worker.backoff)
        rig.step()
    rig.clock.advance(STABLE_AFTER - 0.1)  # not quite stable: the delay keeps doubling
    worker.exit(1)
    rig.step()
    assert worker.backoff == 4.0
    rig.clock.advance(4.0)
    rig.step()
    rig.clock.advance(STABLE_AFTER + 0.1)
    worker.exit(1)
    rig.step()
    assert worker.backoff == 0.5


def test_replace_remove_change_and_retries_are_ignored_while_stopping() -> None:
    rig = Rig()
    rig.sup.start_all()
    gunicorn = rig.child("gunicorn")
    gunicorn.exit(1)
    rig.step()
    rig.sup.request_stop()
    rig.step()
    assert rig.sup.stop_requested and rig.sup.stop_reason == "stop requested"
    rig.sup.replace(spec("gunicorn", "new"))
    rig.sup.replace(spec("extra"))
    rig.sup.remove("nginx")
    rig.sup.app_changed("app.py changed")
    rig.step()
    rig.clock.advance(60)
    rig.step()
    assert gunicorn.starts == 1 and gunicorn.spec.argv == ["gunicorn"]
    assert set(rig.sup.children) == {"gunicorn", "nginx"} and rig.stop_order == []


def test_replace_restarts_and_the_old_exit_is_not_a_crash() -> None:
    rig = Rig()
    rig.sup.start_all()
    rig.sup.replace(spec("gunicorn", "new"), "devstack.toml changed")
    rig.step()  # the old process's exit event
    gunicorn = rig.child("gunicorn")
    assert gunicorn.starts == 2 and gunicorn.spec.argv == ["gunicorn", "new"]
    assert gunicorn.state is ChildState.RUNNING and gunicorn.retry_at is None
    assert rig.sink.said("restarting (devstack.toml changed)") and not rig.sink.said("exited")
    rig.sup.remove("gunicorn", "devstack.toml changed")
    rig.step()
    assert "gunicorn" not in rig.sup.children and not rig.sink.said("next start")


def test_restart_stops_and_starts_one_process_and_its_exit_is_not_a_crash() -> None:
    rig = Rig()
    rig.sup.start_all()
    before = rig.child("nginx").pid
    rig.sup.restart("nginx", "asked from the dashboard or CLI")
    rig.step()  # the old process's exit event
    nginx = rig.child("nginx")
    assert nginx.starts == 2 and nginx.pid != before and rig.stop_order == ["nginx"]
    assert nginx.state is ChildState.RUNNING and nginx.retry_at is None
    assert rig.sink.said("restarting (asked from the dashboard or CLI)") and not rig.sink.said("exited")
    assert rig.started[-1] == ("nginx", nginx.pid) and rig.child("gunicorn").starts == 1


def test_restart_brings_a_process_in_backoff_back_at_once() -> None:
    rig = Rig(("worker",))
    rig.sup.start_all()
    rig.child("worker").exit(1)
    rig.step()
    assert rig.state("worker") is ChildState.BACKOFF
    rig.sup.restart("worker")
    assert rig.state("worker") is ChildState.RUNNING and rig.child("worker").retry_at is None
    rig.sup.restart("nope")  # not a process of this stack: nothing happens
    assert rig.child("worker").starts == 2


def test_shutdown_stops_nginx_before_the_others() -> None:
    rig = Rig(("gunicorn", "worker", "nginx"))
    rig.sup.start_all()
    rig.sup.shutdown()
    assert rig.stop_order[0] == "nginx" and sorted(rig.stop_order[1:]) == ["gunicorn", "worker"]
    assert all(c.state is ChildState.EXITED for c in rig.sup.children.values())


def test_a_start_that_raises_is_retried_with_backoff() -> None:
    rig = Rig(("worker",))
    worker = rig.child("worker")
    worker.start_errors = [FileNotFoundError(2, "No such file or directory"), PermissionError(13, "Denied")]
    rig.sup.start_all()
    assert rig.sink.said("cannot start worker: No such file or directory")
    assert worker.state is ChildState.BACKOFF and rig.started == []
    rig.clock.advance(0.5)
    rig.step()
    assert rig.sink.said("cannot start worker: Denied") and worker.backoff == 1.0
    rig.clock.advance(1.0)
    rig.step()
    assert rig.state("worker") is ChildState.RUNNING and rig.started == [("worker", 4001)]


def test_a_failing_callback_does_not_stop_the_loop() -> None:
    rig = Rig()
    rig.sup.start_all()
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    rig.sup.call_soon(broken)
    rig.sup.call_soon(lambda: done.append("after"))
    reason = rig.sup.run(until=lambda: bool(done))
    assert rig.sink.said("internal error in broken: RuntimeError: boom")
    assert done == ["after"] and reason == ""
    assert sorted(rig.stop_order) == ["gunicorn", "nginx"]  # run() always ends with a shutdown


@pytest.mark.parametrize("kill_workers", [False, True])
def test_a_change_reloads_a_running_app(kill_workers: bool) -> None:
    rig = Rig(kill_workers=kill_workers)
    rig.sup.start_all()
    rig.sup.app_changed("views.py changed")
    rig.step()
    gunicorn = rig.child("gunicorn")
    assert gunicorn.starts == 1 and rig.sink.said("reloading (views.py changed)")
    assert (gunicorn.worker_signals, gunicorn.signals) == (
        ([signal.SIGKILL], []) if kill_workers else ([], [signal.SIGHUP])
    )
