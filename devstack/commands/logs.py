"""`devstack logs`: the logs of every process, after the fact and live (-f)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from devstack.commands._common import load_config
from devstack.errors import DevstackError, Exit
from devstack.logs import format as fmt
from devstack.logs import reader
from devstack.logs.printer import Printer
from devstack.logs.query import QueryError, record_filter
from devstack.project import procfile
from devstack.project.config import RESERVED_NAMES, Config
from devstack.system import env as env_mod
from devstack.system.env import Env

FOLLOW_DEFAULT_LINES = 10  # like tail -f: some context, then what comes
POLL_SECONDS = 0.1


def run(
    config_path: Path | None,
    names: list[str],
    lines: int | None = None,
    follow: bool = False,
    since: str | None = None,
    grep: str | None = None,
    as_json: bool = False,
    prefix: bool = True,
    color: str = "auto",
    env: Env | None = None,
) -> int:
    env = env or env_mod.current()
    config = load_config(config_path)
    log_dir = config.state_dir / "logs"
    try:
        keep = record_filter(since, grep)
    except QueryError as exc:
        raise DevstackError(str(exc), Exit.USAGE) from None
    on_disk = reader.sources(log_dir)
    _check_names(config, names, on_disk)
    chosen = [s for s in on_disk if not names or reader.matches(s, names)]
    if not on_disk and not follow:
        env.err().write(f"devstack: no logs yet in {log_dir} — `devstack up` writes them\n")
        return 0
    if lines is None and follow:
        lines = FOLLOW_DEFAULT_LINES
    width = fmt.width_for([*chosen, *names])
    stdout = env.out()
    printer = Printer(stdout.buffer, color=env.color(color), prefix=prefix, as_json=as_json, width=width)
    snapshot = reader.Snapshot()
    try:
        printer.write(reader.history(log_dir, chosen, lines, keep, snapshot))
        if follow:
            _follow(log_dir, names, snapshot, printer, keep)
    except BrokenPipeError:
        # `devstack logs | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a follow ends
    return 0


def _follow(
    log_dir: Path,
    names: list[str],
    snapshot: reader.Snapshot,
    printer: Printer,
    keep: Callable[[reader.Record], bool] | None,
) -> None:
    follower = reader.Follower(log_dir, names, snapshot)
    try:
        while True:
            batch = follower.poll()
            if keep is not None:
                batch = [r for r in batch if keep(r)]
            if batch:
                printer.write(batch)
            else:
                time.sleep(POLL_SECONDS)
    finally:
        follower.close()


def _check_names(config: Config, names: list[str], on_disk: list[str]) -> None:
    """A typo is an error; a real process that has not written yet is not."""
    known = {*on_disk, *RESERVED_NAMES, *config.processes, *procfile.process_names(config.root)}
    if config.app.nodes > 1:  # gunicorn.1 .. gunicorn.N (`gunicorn` already names them all)
        known |= {f"gunicorn.{index}" for index in range(1, config.app.nodes + 1)}
    if config.queue.started:
        known.add("redis")
    unknown = [n for n in names if not any(reader.matches(k, [n]) for k in known)]
    if unknown:
        raise DevstackError(
            f"no process named {', '.join(unknown)} — known: {', '.join(sorted(known))}", Exit.USAGE
        )
