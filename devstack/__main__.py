"""`python -m devstack` and the `devstack` script: status/logs/down written plainly run without
importing typer (the CLI module and typer cost a third of such a command's start); anything else
goes through the CLI."""

from __future__ import annotations

import sys

from devstack import fastpath


def main() -> None:
    args = sys.argv[1:]
    if fastpath.parse(args) is None:
        from devstack.cli import main as cli_main

        cli_main(args)
    from devstack import boundary

    sys.exit(boundary.guarded(lambda: fastpath.run(args) or 0))


if __name__ == "__main__":
    main()
