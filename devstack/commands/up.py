"""`devstack up`: render, validate, start, prove ready, then stream logs until Ctrl-C."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from devstack import config as config_mod
from devstack import console, plan, safefs, state
from devstack.backends.local import LocalStack, ReadyReport, check_not_running, check_ports
from devstack.commands._common import load_config
from devstack.config import Config
from devstack.errors import DevstackError, Exit
from devstack.logs.format import width_for
from devstack.logs.sink import LogMux

DETACH_TIMEOUT = 60.0


def run(
    config_path: Path | None,
    detach: bool = False,
    color: str = "auto",
    daemon: bool = False,
    vm: bool = False,
) -> int:
    # State, logs, nginx's temp files and gunicorn's control socket are never writable by other
    # users, whatever the shell's umask (000 would make them all world-writable).
    os.umask(os.umask(0o022) | 0o022)
    config = load_config(config_path)
    if vm:
        from devstack.commands import up_vm

        return up_vm.run(config, color=color)
    the_plan = plan.build(config, colors=color != "never")
    for warning in the_plan.warnings:
        console.err().print(f"[yellow]warning:[/] {warning}")
    if detach:
        return _detach(config, the_plan, color)
    return _supervise(config, the_plan, color, daemon)


def _supervise(
    config: Config,
    the_plan: plan.Plan,
    color: str,
    daemon: bool,
    load: Callable[[Path], Config] = config_mod.load,
) -> int:
    terminal = None if daemon else sys.stdout.buffer
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
    lock = None if daemon else acquire_start_lock(config.state_dir)
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
        if spinner is not None:
            with contextlib.suppress(OSError, ValueError):
                spinner.stop()
        stack.set_status("failed", str(exc))
        mux.close()
        raise
    if lock is not None:
        os.close(lock)  # state.json names this supervisor now: the next `up` sees it running
    outcome: dict[str, ReadyReport] = {}

    def readiness() -> None:
        report = stack.wait_ready(started)
        outcome["report"] = report
        stack.supervisor.call_soon(lambda: _on_ready(stack, mux, report, spinner, daemon))

    threading.Thread(target=readiness, daemon=True, name="readiness").start()
    try:
        stack.supervisor.run()
    finally:
        if spinner is not None:
            with contextlib.suppress(OSError, ValueError):
                spinner.stop()
        mux.release()
        stack.set_status(
            "stopped" if "report" in outcome and outcome["report"].ok else "failed", stack.state.error
        )
        mux.close()
    report = outcome.get("report")
    if report is not None and not report.ok:
        _say(f"[red]error:[/] the stack did not become ready: {report.error}")
        return int(Exit.NOT_READY)
    if not daemon:
        _say(f"devstack: stopped ({stack.supervisor.stop_reason}); no process left")
    return int(Exit.OK)


def _say(message: str) -> None:
    """Print to the terminal, which may be gone (its window closed: that is why we stopped)."""
    with contextlib.suppress(OSError, ValueError):
        console.err().print(message, soft_wrap=True)


def _on_ready(stack: LocalStack, mux: LogMux, report: ReadyReport, spinner: object, daemon: bool) -> None:
    if spinner is not None:
        with contextlib.suppress(OSError, ValueError):  # the terminal may be gone
            spinner.stop()  # type: ignore[attr-defined]
    if not report.ok:
        stack.set_status("failed", report.error)
        mux.release()
        stack.supervisor.request_stop("not ready")
        return
    stack.set_status("ready", ready_seconds=report.seconds)
    if not daemon:
        _say(f"[bold green]ready[/] in {report.seconds:.2f} s — [bold]{stack.config.public_url}/[/]")
        for step in report.steps:
            _say(f"  [green]✓[/] {step}")
        python = stack.plan.app_python
        if python is not None:
            shown = f"{escape(python.path)} ({escape(python.why)}), gunicorn {python.gunicorn_shown}"
            _say(f"  app python: {shown}")
        _say("  Ctrl-C stops the stack; `devstack logs -f` follows it from another terminal")
    mux.note("devstack", f"ready in {report.seconds:.2f} s at {stack.config.public_url}/")
    mux.release()


def acquire_start_lock(state_dir: Path) -> int:
    """Held from the already-running check until the new supervisor is in state.json: two `up`
    started at once in one project must not both pass the check (the loser then says "already
    running" instead of reporting the winner's stack as its own). Released when the fd closes."""
    safefs.ensure_dir(state_dir)
    fd = safefs.open_file(state_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def log_dir_problem(log_dir: Path) -> str:
    """Why log files cannot be written to log_dir ("" if they can): missing rights, a full disk."""
    probe = log_dir / f".write-test-{os.getpid()}"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        # A real block, synced: on a full disk, creating an empty file still succeeds.
        with os.fdopen(safefs.open_file(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if log_dir.exists() and not log_dir.is_dir():
            return "it is a file, not a folder"
        return str(exc.strerror or exc)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return ""


def _detach(config: Config, the_plan: plan.Plan, color: str = "auto") -> int:
    """Start the supervisor in its own session and return once the stack is ready."""
    safefs.check_tree(config.state_dir)  # before the first file is opened there
    lock = acquire_start_lock(config.state_dir)  # held until this process exits
    stale = check_not_running(config)
    if stale:
        console.err().print(f"[yellow]warning:[/] {escape(stale)}")
    check_ports(config)
    config.state_dir.mkdir(exist_ok=True)
    state.path(config.state_dir).unlink(missing_ok=True)
    log_dir = config.state_dir / "logs"
    problem = log_dir_problem(log_dir)
    log: int | None = None
    if problem:
        # The detached stack's warnings would land in that same folder: say it here, once.
        console.err().print(
            f"[yellow]warning:[/] cannot write logs to {escape(str(log_dir))} "
            f"({escape(problem)}): the stack runs, but without log files — "
            "free space or fix the folder, then restart it for its logs"
        )
    else:
        log = safefs.open_file(log_dir / "supervisor.out", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    pid = _fork_daemon(config, the_plan, color, log, lock)
    if log is not None:
        os.close(log)
    deadline = time.monotonic() + DETACH_TIMEOUT
    exited: int | None = None
    with console.err().status(f"starting the stack for {config.public_url}"):
        while time.monotonic() < deadline:
            current = state.read(config.state_dir)
            ours = current is not None and current.supervisor is not None and current.supervisor.pid == pid
            if current is not None and ours and current.status == "ready":
                for notice in current.extra.get("notices", []):
                    console.err().print(f"[yellow]warning:[/] {escape(str(notice))}")
                console.err().print(
                    f"[bold green]ready[/] in {current.ready_seconds or 0:.2f} s — "
                    f"[bold]{current.url}/[/] (supervisor pid {pid}; `devstack down` stops it)"
                )
                return int(Exit.OK)
            exited = _reaped(pid)
            if exited is not None:
                break
            time.sleep(0.01)
    current = state.read(config.state_dir)
    error = current.error if current is not None and current.error else ""
    if not error:
        try:
            tail = (log_dir / "supervisor.out").read_text(errors="replace")
        except OSError:
            tail = ""
        error = (tail.strip().splitlines() or ["no output"])[-1]
        error = error.removeprefix("devstack: error: ")  # said once, by the raise below
    if exited is None:
        os.kill(pid, signal.SIGTERM)
        _wait(pid, 15.0)
    raise DevstackError(f"the stack did not become ready: {error}", Exit.NOT_READY)


def _fork_daemon(config: Config, the_plan: plan.Plan, color: str, log: int | None, lock: int) -> int:
    """The detached supervisor, forked: no second interpreter start and no second import of
    everything (that was half of `up --detach`). The child leads a new session, so the
    terminal's Ctrl-C and hang-up never reach it. Nothing runs threads before the fork."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = int(Exit.ERROR)
    try:
        os.setsid()
        os.close(lock)  # the parent's copy holds the start lock until it has seen "ready"
        os.chdir(config.root)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(log if log is not None else devnull, 1)
        os.dup2(log if log is not None else devnull, 2)
        console.configure(color)  # consoles made afresh for the new stderr (not a terminal)
        code = _supervise(config, the_plan, color, daemon=True)
    except DevstackError as exc:
        _say(f"devstack: error: {escape(str(exc))}")
        code = int(exc.exit_code)
    except BaseException:  # the same story as the CLI's boundary, into supervisor.out
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # never the parent's atexit handlers or buffers a second time


def _reaped(pid: int) -> int | None:
    """The exit status of our forked child if it has ended, else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status) if done else None


def _wait(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _reaped(pid) is None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.02)
