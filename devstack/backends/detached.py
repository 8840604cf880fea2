"""`devstack up --detach`: the supervisor in its own session, and the wait for it to say "ready"
(or "waiting" for a fix of the app) in state.json — forked from here, or (a plain `up --detach`)
this process itself, forked first by speed/handoff.py."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devstack import speed
from devstack.backends.foreground import say, supervise
from devstack.backends.local import check_not_running, check_ports
from devstack.errors import DevstackError, Exit
from devstack.procs import heap
from devstack.project.config import Config
from devstack.stack import plan, state
from devstack.system import console, kill, safefs, startlock
from devstack.system import env as env_mod
from devstack.system.console import escape

if TYPE_CHECKING:
    from rich.console import Console

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
    lock = startlock.acquire(config.state_dir)  # held until this process exits
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
    """Run body() in its own session (its output into logs/supervisor.out) and wait for
    state.json to say ready (or waiting, when waiting_ok). progress: echo the daemon's own
    lines meanwhile (a VM boot takes minutes: say what it is doing). Forked here, unless this
    process is already `up --detach`'s daemon (speed/handoff.py): then body() runs here
    and the waiting happens beside it."""
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
    wait = _Wait(config, log_dir, shown, deadline_s, waiting_ok, progress)
    if speed.parent_waits():
        return _serve_here(config, body, color, log, lock, wait)
    wake, wake_end = os.pipe()  # the daemon writes a byte with every state.json it writes
    os.set_blocking(wake_end, False)  # a full pipe must never stall the daemon
    pid = _fork_daemon(config, body, color, log, lock, (wake, wake_end))
    os.close(wake_end)  # the daemon's copy only: its exit is then end-of-file here
    if log is not None:
        os.close(log)
    ended: list[int] = []  # the daemon's exit code, once reaped (a second waitpid cannot say it)

    def exited() -> int | None:
        code = _reaped(pid)
        if code is not None and not ended:
            ended.append(code)
        return code

    try:
        error = wait.until_ready(console.err(), pid, exited, wake)
    finally:
        os.close(wake)
    if not error:
        return int(Exit.OK)
    if exited() is None:
        kill.stop_pid(pid, lambda: _reaped(pid) is None, 15.0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # ours: reap it (after a KILL it is gone at once)
    raise DevstackError(f"the stack did not become ready: {error}", not_ready_code(ended))


def not_ready_code(ended: list[int]) -> Exit:
    """What `up --detach` exits with when its stack did not become ready: the daemon's own
    code when it ended on an error of its own (a rejected nginx.conf is 1, taken ports 3, as in
    the foreground), else 4 (not ready in time, stopped, killed by a signal)."""
    if ended and ended[0] > 0:
        try:
            return Exit(ended[0])
        except ValueError:
            return Exit.NOT_READY
    return Exit.NOT_READY


class _Wait:
    """The waiting half of `up --detach`: the spinner, then "ready" (or "waiting for a fix"),
    or the error — for a daemon forked from here, or for the one this process is."""

    def __init__(
        self, config: Config, log_dir: Path, shown: int, deadline_s: float, waiting_ok: bool, progress: bool
    ) -> None:
        self.config = config
        self.log_dir = log_dir
        self.shown = shown  # supervisor.out is echoed from here on (progress)
        self.deadline_s = deadline_s
        self.waiting_ok = waiting_ok
        self.progress = progress

    def until_ready(self, err: Console, pid: int, exited: Callable[[], int | None], wake: int) -> str:
        """ "" once the stack with supervisor pid is ready (or waiting, if that is fine); else
        why not (the deadline passed, or the daemon ended first)."""
        config, out = self.config, self.log_dir / "supervisor.out"
        deadline = time.monotonic() + self.deadline_s
        with err.status(f"starting the stack for {config.public_url}"):
            while time.monotonic() < deadline:
                if self.progress:
                    self.shown = _echo(out, self.shown, err)
                current = state.read(config.state_dir)
                boss = current.supervisor if current is not None else None
                ours = boss is not None and boss.pid == pid
                if current is not None and ours and current.status == "ready":
                    if self.progress:
                        _echo(out, self.shown, err)
                    for notice in current.extra.get("notices", []):
                        err.print(f"[yellow]warning:[/] {escape(str(notice))}")
                    err.print(
                        f"[bold green]ready[/] in {current.ready_seconds or 0:.2f} s — "
                        f"[bold]{current.url}/[/] (supervisor pid {pid}; `devstack down` stops it)"
                    )
                    for step in current.extra.get("ready_steps", []):  # app.nodes > 1
                        err.print(f"  [green]✓[/] {escape(str(step))}", soft_wrap=True)
                    if current.extra.get("dashboard"):
                        err.print(f"  dashboard: [bold]{current.url}{current.extra['dashboard']}[/]")
                    return ""
                if current is not None and ours and current.status == "waiting" and self.waiting_ok:
                    err.print(f"[yellow]waiting for a fix:[/] {escape(current.error)}", soft_wrap=True)
                    err.print(
                        f"  the stack runs at [bold]{current.url}/[/] (supervisor pid {pid}) and becomes "
                        "ready on the save that fixes it: `devstack logs -f` shows the app, "
                        "`devstack down` stops it"
                    )
                    return ""
                if exited() is not None:
                    break
                _wait(wake, 0.1 if self.progress else 1.0)
        current = state.read(config.state_dir)
        error = current.error if current is not None and current.error else ""
        if not error:
            try:
                tail = out.read_text(errors="replace")
            except OSError:
                tail = ""
            error = (tail.strip().splitlines() or ["no output"])[-1]
            error = error.removeprefix("devstack: error: ")  # said once, by the raise
        return error


def _serve_here(
    config: Config,
    body: Callable[[], int],
    color: str,
    log: int | None,
    lock: int,
    wait: _Wait,
) -> int:
    """This process is the daemon already (forked first, its head start running): run body()
    here while a thread waits for "ready" and prints it on the terminal, then releases the
    waiting parent. Output from here on goes to supervisor.out, as a forked daemon's does."""
    terminal = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
    err = env_mod.Env(
        stderr=terminal,
        stderr_isatty=env_mod.current().err_isatty(),
        stdout_isatty=env_mod.current().out_isatty(),
        color_mode=color,
    ).console("err")
    _into_log(config, log, color)
    if log is not None:
        os.close(log)
    wake, wake_end = os.pipe()
    os.set_blocking(wake_end, False)
    state.notify_on_write(wake_end)
    ended: list[int] = []
    heap.one_arena()  # before this daemon's first thread (procs/heap.py)

    def report() -> None:
        error = wait.until_ready(err, os.getpid(), lambda: ended[0] if ended else None, wake)
        os.close(lock)  # state.json names this supervisor: the next `up` sees it running
        os.close(wake)  # later state.json writes stop pinging (their write fails and stops)
        terminal.close()  # the caller's terminal (or pipe) is theirs again
        if error:
            speed.release(int(not_ready_code(ended)), f"the stack did not become ready: {error}")
            if not ended:
                os.kill(os.getpid(), signal.SIGTERM)  # not ready in time: stop what runs
        else:
            speed.release(int(Exit.OK))

    reporter = threading.Thread(target=report, daemon=True, name="up-detach")
    reporter.start()
    code = int(Exit.ERROR)
    try:
        code = body()
    except DevstackError as exc:
        say(f"devstack: error: {escape(str(exc))}")
        code = int(exc.exit_code)
    finally:
        ended.append(code)  # the reporter wakes on the last state.json (stopped or failed)
        reporter.join(timeout=30.0)
    return code


def _echo(path: Path, offset: int, err: Console) -> int:
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
            err.print(line, markup=False, highlight=False)
    return offset + cut


def _wait(wake: int, timeout: float) -> None:
    """Until the daemon wrote state.json (or exited), at most timeout."""
    ready, _, _ = select.select([wake], [], [], timeout)
    if ready:
        data = os.read(wake, 4096)
        if not data:  # the daemon exited: wait for the reap, not for a byte that never comes
            time.sleep(0.005)


def _fork_daemon(
    config: Config, body: Callable[[], int], color: str, log: int | None, lock: int, wake: tuple[int, int]
) -> int:
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
        os.close(wake[0])  # the parent's end: once the parent is gone, a write fails and stops
        state.notify_on_write(wake[1])
        _into_log(config, log, color)
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


def _into_log(config: Config, log: int | None, color: str) -> None:
    """The daemon's own output from here on: stdin from /dev/null, stdout and stderr into
    supervisor.out (or /dev/null without one), its folder the project's."""
    os.chdir(config.root)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(log if log is not None else devnull, 1)
    os.dup2(log if log is not None else devnull, 2)
    os.close(devnull)
    console.configure(color)  # consoles made afresh for the new stderr (not a terminal)


def _reaped(pid: int) -> int | None:
    """The exit status of our forked child if it has ended, else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status) if done else None
