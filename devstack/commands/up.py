"""`devstack up`: render, validate, start, prove ready, then stream logs until Ctrl-C."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from rich.markup import escape

from devstack import config as config_mod
from devstack import console, plan, state
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
        return _detach(config, config_path, color)
    return _supervise(config, the_plan, color, daemon)


def _supervise(
    config: Config,
    the_plan: plan.Plan,
    color: str,
    daemon: bool,
    load: Callable[[Path], Config] = config_mod.load,
) -> int:
    terminal = None if daemon else sys.stdout.buffer
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
    stack.start()
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
        _say("  Ctrl-C stops the stack; `devstack logs -f` follows it from another terminal")
    mux.note("devstack", f"ready in {report.seconds:.2f} s at {stack.config.public_url}/")
    mux.release()


def acquire_start_lock(state_dir: Path) -> int:
    """Held from the already-running check until the new supervisor is in state.json: two `up`
    started at once in one project must not both pass the check (the loser then says "already
    running" instead of reporting the winner's stack as its own). Released when the fd closes."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def log_dir_problem(log_dir: Path) -> str:
    """Why log files cannot be written to log_dir ("" if they can): missing rights, a full disk."""
    probe = log_dir / f".write-test-{os.getpid()}"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        # A real block, synced: on a full disk, creating an empty file still succeeds.
        with open(probe, "wb") as handle:
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


def _detach(config: Config, config_path: Path | None, color: str = "auto") -> int:
    """Start the supervisor in its own session and return once the stack is ready."""
    acquire_start_lock(config.state_dir)  # held until this process exits
    stale = check_not_running(config)
    if stale:
        console.err().print(f"[yellow]warning:[/] {escape(stale)}")
    check_ports(config)
    config.state_dir.mkdir(exist_ok=True)
    state.path(config.state_dir).unlink(missing_ok=True)
    log_dir = config.state_dir / "logs"
    problem = log_dir_problem(log_dir)
    log: IO[bytes] | int = subprocess.DEVNULL
    if problem:
        # The detached stack's warnings would land in that same folder: say it here, once.
        console.err().print(
            f"[yellow]warning:[/] cannot write logs to {escape(str(log_dir))} "
            f"({escape(problem)}): the stack runs, but without log files — "
            "free space or fix the folder, then restart it for its logs"
        )
    else:
        log = open(log_dir / "supervisor.out", "ab")  # noqa: SIM115
    # --color reaches the daemon: `never` must also keep the children from writing colors.
    argv = [
        sys.executable,
        "-m",
        "devstack",
        "up",
        "--config",
        str(config.path),
        "--daemon",
        "--color",
        color,
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        cwd=config.root,
        env=os.environ.copy(),
    )
    if not isinstance(log, int):
        log.close()
    deadline = time.monotonic() + DETACH_TIMEOUT
    with console.err().status(f"starting the stack for {config.public_url}"):
        while time.monotonic() < deadline:
            current = state.read(config.state_dir)
            ours = (
                current is not None and current.supervisor is not None and current.supervisor.pid == proc.pid
            )
            if current is not None and ours and current.status == "ready":
                for notice in current.extra.get("notices", []):
                    console.err().print(f"[yellow]warning:[/] {escape(str(notice))}")
                console.err().print(
                    f"[bold green]ready[/] in {current.ready_seconds or 0:.2f} s — "
                    f"[bold]{current.url}/[/] (supervisor pid {proc.pid}; `devstack down` stops it)"
                )
                return int(Exit.OK)
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.poll()
    current = state.read(config.state_dir)
    error = current.error if current is not None and current.error else ""
    if not error:
        try:
            tail = (log_dir / "supervisor.out").read_text(errors="replace")
        except OSError:
            tail = ""
        error = (tail.strip().splitlines() or ["no output"])[-1]
        error = error.removeprefix("devstack: error: ")  # said once, by the raise below
    if proc.returncode is None:
        proc.terminate()
        proc.wait(timeout=15)
    raise DevstackError(f"the stack did not become ready: {error}", Exit.NOT_READY)
