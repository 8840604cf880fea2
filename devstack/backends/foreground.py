"""Run the local stack in this process until it is stopped: `devstack up`, the detached daemon
and the VM guest agent all come here.

Readiness runs beside the supervisor. An app that cannot start (an import error, a syntax error
mid-edit) does not end the stack: nginx keeps running, the error is shown once, the status says
"waiting", and the stack becomes ready on the first save that fixes it. `--timeout` restores the
old contract for scripts: not ready in time is exit 4.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devstack import speed
from devstack.backends.local import LocalStack
from devstack.errors import DevstackError, Exit
from devstack.logs.format import width_for
from devstack.logs.sink import LogMux
from devstack.procs import heap
from devstack.project import config as config_mod
from devstack.project.config import Config
from devstack.stack import livepaths as live_paths
from devstack.stack import plan
from devstack.system import console, safefs, startlock
from devstack.system import env as env_mod
from devstack.system.console import escape

if TYPE_CHECKING:
    from devstack.stack.readiness import ReadyReport


def supervise(
    config: Config,
    the_plan: plan.Plan,
    color: str,
    daemon: bool,
    load: Callable[[Path], Config] = config_mod.load,
    timeout: float | None = None,
) -> int:
    heap.one_arena()  # before the log pumps and watchers start their threads (procs/heap.py)
    terminal = None if daemon else env_mod.current().out().buffer
    safefs.check_tree(config.state_dir)  # a planted symlink: one error before any file is opened
    names = [s.source(stream) for s in the_plan.processes for stream in ("stdout", "stderr")]
    mux = LogMux(
        config.state_dir / "logs",
        terminal,
        color=console.use_color(color),
        width=width_for([*names, "watcher", "devstack"]),
        max_bytes=config.logs.max_bytes,
        backups=config.logs.backups,
    )
    stack = LocalStack(config, the_plan, mux, load=load)
    # The daemon of `up --detach` runs under its parent's lock.
    lock = None if daemon else startlock.acquire(config.state_dir)
    stack.prepare()
    stack.supervisor.install_signal_handlers()
    started = time.monotonic()
    if terminal is not None:
        mux.hold()  # the spinner owns the screen until the stack is ready
    spinner = None if daemon else console.err().status(f"starting the stack for {config.public_url}")
    if spinner is not None:
        spinner.start()
    try:
        stack.start()
    except DevstackError as exc:  # nginx rejected its config: gunicorn was stopped again
        _stop_spinner(spinner)
        stack.set_status("failed", str(exc))
        mux.close()
        live_paths.remove_socket_dir(config.state_dir)
        raise
    if lock is not None:
        os.close(lock)  # state.json names this supervisor now: the next `up` sees it running
    outcome: dict[str, ReadyReport] = {}

    def readiness() -> None:
        report = wait_until_ready(
            stack, started, timeout, lambda r: on_waiting(stack, mux, r, spinner, daemon)
        )
        outcome["report"] = report
        stack.supervisor.call_soon(lambda: _on_ready(stack, mux, report, spinner, daemon))
        if report.ok:
            speed.prune()  # at most once a day, here: after ready, off the supervisor's loop

    threading.Thread(target=readiness, daemon=True, name="readiness").start()
    try:
        stack.supervisor.run()
    finally:
        _stop_spinner(spinner)
        mux.release()
        stack.set_status(
            "stopped" if "report" in outcome and outcome["report"].ok else "failed", stack.state.error
        )
        mux.close()
        live_paths.remove_socket_dir(config.state_dir)  # every child is stopped: nothing listens
    report = outcome.get("report")
    if report is not None and not report.ok:
        say(f"[red]error:[/] the stack did not become ready: {report.error}")
        return int(Exit.NOT_READY)
    if not daemon:
        say(f"devstack: stopped ({stack.supervisor.stop_reason}); no process left")
    return int(Exit.OK)


def wait_until_ready(
    stack: LocalStack,
    started: float,
    timeout: float | None,
    waiting: Callable[[ReadyReport], None],
    clock: Callable[[], float] = time.monotonic,
) -> ReadyReport:
    """Ready, or not: with no timeout an app that cannot start is waited for (each new error
    said once through `waiting`); other failures end the wait as before."""
    attempt_started = started
    said = ""
    while True:
        report = stack.wait_ready(attempt_started)
        if report.ok or not report.app_broken or stack.supervisor.stop_requested:
            break
        if timeout is not None and clock() - started >= timeout:
            break
        if report.error != said:
            said = report.error
            stack.supervisor.call_soon(lambda r=report: waiting(r))  # type: ignore[misc]
        # gunicorn is down until a save restarts it (the app watcher), or the backoff retry.
        deadline = None if timeout is None else started + timeout
        if not stack.wait_app_started(deadline):
            break
        attempt_started = clock()
    if report.ok:
        report.seconds = clock() - started
    return report


def on_waiting(stack: LocalStack, mux: LogMux, report: ReadyReport, spinner: object, daemon: bool) -> None:
    _stop_spinner(spinner)
    stack.set_status("waiting", report.error)
    # One line, on the terminal and in the log: the app's own traceback scrolls by around it.
    mux.note("devstack", f"waiting for a fix: {report.error} — nginx runs; ready on the save that fixes it")
    mux.release()


def say(message: str) -> None:
    """Print to the terminal, which may be gone (its window closed: that is why we stopped)."""
    with contextlib.suppress(OSError, ValueError):
        console.err().print(message, soft_wrap=True)


def _stop_spinner(spinner: object) -> None:
    if spinner is not None:
        with contextlib.suppress(OSError, ValueError):  # the terminal may be gone
            spinner.stop()  # type: ignore[attr-defined]


def _on_ready(stack: LocalStack, mux: LogMux, report: ReadyReport, spinner: object, daemon: bool) -> None:
    _stop_spinner(spinner)
    if not report.ok:
        stack.set_status("failed", report.error)
        mux.release()
        stack.supervisor.request_stop("not ready")
        return
    if stack.config.app.nodes > 1:  # `up --detach` and `status` show what proved the nodes
        stack.remember("ready_steps", list(report.steps))
    stack.set_status("ready", ready_seconds=report.seconds)
    if not daemon:
        say(f"[bold green]ready[/] in {report.seconds:.2f} s — [bold]{stack.config.public_url}/[/]")
        for step in report.steps:
            say(f"  [green]✓[/] {step}")
        python = stack.plan.app_python
        if python is not None:
            shown = f"{escape(python.path)} ({escape(python.why)}), gunicorn {python.gunicorn_shown}"
            say(f"  app python: {shown}")
        if stack.live is not None:
            say(f"  dashboard: [bold]{stack.config.public_url}/__devstack/[/] (`devstack open` opens it)")
        say("  Ctrl-C stops the stack; `devstack logs -f` follows it from another terminal")
    mux.note("devstack", f"ready in {report.seconds:.2f} s at {stack.config.public_url}/")
    mux.release()
