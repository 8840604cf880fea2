"""`python -m devstack` and the `devstack` script: up/status/logs/down written plainly run without
importing typer (the CLI module and typer cost a third of such a command's start: speed/);
anything else goes through the CLI."""

from __future__ import annotations

import contextlib
import os
import sys

from devstack import speed


def main() -> None:
    args = sys.argv[1:]
    parsed = speed.parse(args)
    if parsed is None:
        from devstack.cli.app import main as cli_main

        cli_main(args)
    elif speed.detaches(parsed):  # before any other import: the daemon forks off first
        config = parsed[1].get("config")
        wait = speed.split(str(config) if config else None)
        if wait is not None:  # the shell's process: the daemon's verdict is this command's
            from devstack.cli import boundary

            leave(boundary.guarded(wait))
    from devstack.cli import boundary, plain

    leave(boundary.guarded(lambda: plain.run(args) or 0))


def leave(code: int) -> None:
    """Flush and exit without the interpreter's teardown of every module the command imported
    (45-65 ms at the end of `up --detach`, measured). No atexit handler of ours is skipped:
    devstack registers none, and every thread it starts is joined or a daemon."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`): nothing to keep
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
