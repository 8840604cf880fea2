"""`devstack up`: render, validate, start, prove ready, then stream logs until Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from devstack import console, plan, state
from devstack.backends.local import LocalStack, ReadyReport, check_not_running, check_ports
from devstack.commands._common import load_config
from devstack.config import Config
from devstack.errors import DevstackError, Exit
from devstack.logs.format import width_for
from devstack.logs.sink import LogMux

DETACH_TIMEOUT = 60.0


def run(config_path: Path | None, detach: bool = False, color: str = "auto",
        daemon: bool = False, vm: bool = False) -> int:
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


def _supervise(config: Config, the_plan: plan.Plan, color: str, daemon: bool) -> int:
    terminal = None if daemon else sys.stdout.buffer
    names = [s.source(stream) for s in the_plan.processes for stream in ("stdout", "stderr")]
    mux = LogMux(config.state_dir / "logs", terminal, color=console.use_color(color),
                 width=width_for([*names, "watcher", "devstack"]),
                 max_bytes=config.logs.max_bytes, backups=config.logs.backups)
    stack = LocalStack(config, the_plan, mux)
    stack.prepare()
    stack.supervisor.install_signal_handlers()
    started = time.monotonic()
    if terminal is not None:
        mux.hold()  # the spinner owns the screen until the stack is ready
    spinner = None if daemon else console.err().status(f"starting the stack for {config.public_url}")
    if spinner is not None:
        spinner.start()
    stack.start()
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
            spinner.stop()
        mux.release()
        stack.set_status("stopped" if "report" in outcome and outcome["report"].ok else "failed",
                         stack.state.error)
        mux.close()
    report = outcome.get("report")
    if report is not None and not report.ok:
        console.err().print(f"[red]error:[/] the stack did not become ready: {report.error}",
                            soft_wrap=True)
        return int(Exit.NOT_READY)
    if not daemon:
        console.err().print(f"devstack: stopped ({stack.supervisor.stop_reason}); no process left")
    return int(Exit.OK)


def _on_ready(stack: LocalStack, mux: LogMux, report: ReadyReport, spinner: object,
              daemon: bool) -> None:
    if spinner is not None:
        spinner.stop()  # type: ignore[attr-defined]
    if not report.ok:
        stack.set_status("failed", report.error)
        mux.release()
        stack.supervisor.request_stop("not ready")
        return
    stack.set_status("ready", ready_seconds=report.seconds)
    if not daemon:
        out = console.err()
        out.print(f"[bold green]ready[/] in {report.seconds:.2f} s — "
                  f"[bold]{stack.config.public_url}/[/]")
        for step in report.steps:
            out.print(f"  [green]✓[/] {step}")
        out.print("  Ctrl-C stops the stack; `devstack logs -f` follows it from another terminal")
    mux.note("devstack", f"ready in {report.seconds:.2f} s at {stack.config.public_url}/")
    mux.release()


def _detach(config: Config, config_path: Path | None, color: str = "auto") -> int:
    """Start the supervisor in its own session and return once the stack is ready."""
    check_not_running(config)
    check_ports(config)
    config.state_dir.mkdir(exist_ok=True)
    state.path(config.state_dir).unlink(missing_ok=True)
    (config.state_dir / "logs").mkdir(exist_ok=True)
    log = open(config.state_dir / "logs" / "supervisor.out", "ab")  # noqa: SIM115
    # --color reaches the daemon: `never` must also keep the children from writing colors.
    argv = [sys.executable, "-m", "devstack", "up", "--config", str(config.path), "--daemon",
            "--color", color]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, cwd=config.root, env=os.environ.copy())
    log.close()
    deadline = time.monotonic() + DETACH_TIMEOUT
    with console.err().status(f"starting the stack for {config.public_url}"):
        while time.monotonic() < deadline:
            current = state.read(config.state_dir)
            if current is not None and current.status == "ready":
                console.err().print(
                    f"[bold green]ready[/] in {current.ready_seconds or 0:.2f} s — "
                    f"[bold]{current.url}/[/] (supervisor pid {proc.pid}; `devstack down` stops it)")
                return int(Exit.OK)
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.poll()
    current = state.read(config.state_dir)
    error = current.error if current is not None and current.error else ""
    if not error:
        tail = (config.state_dir / "logs" / "supervisor.out").read_text(errors="replace")
        error = (tail.strip().splitlines() or ["no output"])[-1]
    if proc.returncode is None:
        proc.terminate()
        proc.wait(timeout=15)
    raise DevstackError(f"the stack did not become ready: {error}", Exit.NOT_READY)
