"""`devstack up --detach`: the supervisor forked into its own session, and the parent that
waits for it to say "ready" (or "waiting" for a fix of the app) in state.json."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from devstack import console, plan, safefs, state
from devstack.backends.foreground import acquire_start_lock, say, supervise
from devstack.backends.local import check_not_running, check_ports
from devstack.config import Config
from devstack.console import escape
from devstack.errors import DevstackError, Exit
from devstack.procs import kill

DETACH_TIMEOUT = 60.0


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


def detach(config: Config, the_plan: plan.Plan, color: str = "auto", timeout: float | None = None) -> int:
    """Start the supervisor in its own session and return once the stack is ready, or waits
    for a fix of the app (no timeout); with a timeout, not ready in time is exit 4."""
    safefs.check_tree(config.state_dir)  # before the first file is opened there
    lock = acquire_start_lock(config.state_dir)  # held until this process exits
    stale = check_not_running(config)
    if stale:
        console.err().print(f"[yellow]warning:[/] {escape(stale)}")
    check_ports(config)
    deadline = DETACH_TIMEOUT if timeout is None else timeout + 15.0

    def body() -> int:
        return supervise(config, the_plan, color, daemon=True, timeout=timeout)

    return run_detached(config, body, color, lock, deadline, waiting_ok=timeout is None)


def run_detached(
    config: Config,
    body: Callable[[], int],
    color: str,
    lock: int,
    deadline_s: float,
    waiting_ok: bool = True,
    progress: bool = False,
) -> int:
    """Fork body() into its own session (its output into logs/supervisor.out) and wait for
    state.json to say ready (or waiting, when waiting_ok). progress: echo the daemon's own
    lines meanwhile (a VM boot takes minutes: say what it is doing)."""
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
    shown = os.fstat(log).st_size if log is not None else 0
    pid = _fork_daemon(config, body, color, log, lock)
    if log is not None:
        os.close(log)
    deadline = time.monotonic() + deadline_s
    exited: int | None = None
    with console.err().status(f"starting the stack for {config.public_url}"):
        while time.monotonic() < deadline:
            if progress:
                shown = _echo(log_dir / "supervisor.out", shown)
            current = state.read(config.state_dir)
            ours = current is not None and current.supervisor is not None and current.supervisor.pid == pid
            if current is not None and ours and current.status == "ready":
                if progress:
                    _echo(log_dir / "supervisor.out", shown)
                for notice in current.extra.get("notices", []):
                    console.err().print(f"[yellow]warning:[/] {escape(str(notice))}")
                console.err().print(
                    f"[bold green]ready[/] in {current.ready_seconds or 0:.2f} s — "
                    f"[bold]{current.url}/[/] (supervisor pid {pid}; `devstack down` stops it)"
                )
                return int(Exit.OK)
            if current is not None and ours and current.status == "waiting" and waiting_ok:
                console.err().print(f"[yellow]waiting for a fix:[/] {escape(current.error)}", soft_wrap=True)
                console.err().print(
                    f"  the stack runs at [bold]{current.url}/[/] (supervisor pid {pid}) and becomes ready "
                    "on the save that fixes it: `devstack logs -f` shows the app, `devstack down` stops it"
                )
                return int(Exit.OK)
            exited = _reaped(pid)
            if exited is not None:
                break
            time.sleep(0.005)  # state.json is small: a late look is a slower `up`
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
        kill.stop_pid(pid, lambda: _reaped(pid) is None, 15.0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # ours: reap it (after a KILL it is gone at once)
    raise DevstackError(f"the stack did not become ready: {error}", Exit.NOT_READY)


def _echo(path: Path, offset: int) -> int:
    """Print the daemon's lines written since offset; return the new offset."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return offset
    cut = data.rfind(b"\n") + 1
    for line in data[:cut].decode("utf-8", "replace").splitlines():
        if line.strip():
            console.err().print(line, markup=False, highlight=False)
    return offset + cut


def _fork_daemon(config: Config, body: Callable[[], int], color: str, log: int | None, lock: int) -> int:
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
        code = body()
    except DevstackError as exc:
        say(f"devstack: error: {escape(str(exc))}")
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
