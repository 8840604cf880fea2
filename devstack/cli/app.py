"""The command line: parses options and dispatches to devstack.commands.*; nothing else.

Every command runs inside boundary.guarded, the one error boundary; `python -m devstack` runs
status/logs/down written plainly without importing this module (typer) at all.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from devstack import __version__
from devstack.cli import boundary
from devstack.errors import Exit
from devstack.system import console
from devstack.system import env as env_mod
from devstack.system.console import ColorMode
from devstack.system.env import Env

app = typer.Typer(
    name="devstack",
    help="A correct local Nginx + Gunicorn + Flask-SocketIO stack in one command, "
    "and a doctor that says why it serves stale files.",
    no_args_is_help=True,
    add_completion=True,  # devstack --install-completion [bash|zsh|fish]
    # Plain help: rich's help formatter alone costs more than all of typer (`--help` fast).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="devstack.toml (or a folder holding one); default: search upwards."),
]
ColorOpt = Annotated[
    ColorMode, typer.Option("--color", help="Color output: auto, always, never (--no-color: never).")
]
_COLORED = {"up", "logs", "doctor"}  # the commands with --color, which also take --no-color


def with_aliases(argv: list[str]) -> list[str]:
    """--no-color (what docker compose users type) means --color=never where --color exists."""
    command = next((token for token in argv if not token.startswith("-")), None)
    if command not in _COLORED:
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    return [("--color=never" if i < end and t == "--no-color" else t) for i, t in enumerate(argv)]


def _version(value: bool) -> None:
    if value:
        env_mod.current().out().write(f"devstack {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """devstack: Nginx in front of Gunicorn in front of your Flask-SocketIO app."""


@app.command()
def up(
    config: ConfigOpt = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once ready; keep the stack running.")
    ] = False,
    vm: Annotated[bool, typer.Option("--vm", help="Run the stack inside a Vagrant VM.")] = False,
    color: ColorOpt = ColorMode.auto,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Give up (exit 4) if not ready within SECONDS; default: an app that cannot start "
            "is waited for until a save fixes it.",
            metavar="SECONDS",
            min=1,
        ),
    ] = None,
    daemon: Annotated[bool, typer.Option("--daemon", hidden=True)] = False,
    open_dashboard: Annotated[
        bool, typer.Option("--open", help="Open the dashboard (/__devstack/) in the browser once ready.")
    ] = False,
) -> None:
    """Start nginx and gunicorn, prove the stack works, then show every process's logs."""
    from devstack.commands import up as cmd

    console.configure(color)
    raise typer.Exit(
        cmd.run(
            config,
            detach=detach,
            color=color.value,
            daemon=daemon,
            vm=vm,
            timeout=timeout,
            # Passed only when asked: the plain path (cli/plain.py) never opens it.
            **({"open_dashboard": True} if open_dashboard else {}),
        )
    )


@app.command("open")
def open_(
    config: ConfigOpt = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL.")] = False,
) -> None:
    """Open the stack's dashboard (/__devstack/ on its own URL) in the browser."""
    from devstack.commands import open as cmd

    raise typer.Exit(cmd.run(config, browser=not no_browser))


@app.command()
def restart(
    name: Annotated[str, typer.Argument(help="The process to restart, as `devstack status` lists it.")],
    config: ConfigOpt = None,
) -> None:
    """Stop one process of the running stack and start it again (the dashboard's Restart)."""
    from devstack.commands import restart as cmd

    raise typer.Exit(cmd.restart(config, name))


@app.command("clear-stale")
def clear_stale(
    file: Annotated[
        str, typer.Argument(help="The static file whose STALE row to clear (default: all).")
    ] = "",
    config: ConfigOpt = None,
) -> None:
    """Mark the open STALE rows of the dashboard's freshness feed as resolved."""
    from devstack.commands import restart as cmd

    raise typer.Exit(cmd.clear_stale(config, file))


@app.command()
def down(
    config: ConfigOpt = None,
    halt: Annotated[bool, typer.Option("--halt", help="VM mode: also halt the VM.")] = False,
    destroy: Annotated[bool, typer.Option("--destroy", help="VM mode: also destroy the VM.")] = False,
) -> None:
    """Stop the stack started by `devstack up` (from any terminal)."""
    from devstack.commands import down as cmd

    raise typer.Exit(cmd.run(config, halt=halt, destroy=destroy))


@app.command()
def status(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show whether the stack runs, its processes, PIDs and URL."""
    from devstack.commands import status as cmd

    raise typer.Exit(cmd.run(config, as_json=as_json))  # env: the current one (as speed/fastpath.py)


@app.command()
def logs(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Process names (default: all); nginx means nginx.access and nginx.error."),
    ] = None,
    config: ConfigOpt = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new lines (across restarts and rotation) until Ctrl-C."
        ),
    ] = False,
    lines: Annotated[
        int | None,
        typer.Option(
            "--lines",
            "-n",
            min=0,
            help="The last N lines overall, merged across the chosen processes (not N per process, "
            "unlike compose's --tail); with -f: default 10.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines since a duration ago (10m, 2h) or a time (ISO, or 12:30)."),
    ] = None,
    grep: Annotated[
        str | None, typer.Option("--grep", help="Only lines matching this regular expression.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line: time, process, stream, line.")
    ] = False,
    no_prefix: Annotated[bool, typer.Option("--no-prefix", help="Print the bare lines.")] = False,
    color: ColorOpt = ColorMode.auto,
) -> None:
    """Show the logs of every process, merged in time order, after the fact or live (-f)."""
    from devstack.commands import logs as cmd

    console.configure(color)
    raise typer.Exit(
        cmd.run(
            config,
            names or [],
            lines=lines,
            follow=follow,
            since=since,
            grep=grep,
            as_json=as_json,
            prefix=not no_prefix,
            color=color.value,
        )
    )


@app.command()
def doctor(
    checks: Annotated[
        list[str] | None,
        typer.Argument(help="Check IDs, areas or globs to run (default: all); see --list-checks."),
    ] = None,
    config: ConfigOpt = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="A stack devstack did not start: its public URL, e.g. http://localhost:8001."
        ),
    ] = None,
    nginx_conf: Annotated[
        Path | None,
        typer.Option("--nginx-conf", help="With --url: its nginx.conf (read via `nginx -T` where possible)."),
    ] = None,
    static_dir: Annotated[
        Path | None,
        typer.Option("--static-dir", help="With --url: the folder nginx serves static files from."),
    ] = None,
    static_url: Annotated[
        str, typer.Option("--static-url", help="With --url: the URL prefix of static files.")
    ] = "/static/",
    app_url: Annotated[
        str | None,
        typer.Option("--app-url", help="With --url: gunicorn's own address (default: from proxy_pass)."),
    ] = None,
    gunicorn_log: Annotated[
        Path | None,
        typer.Option("--gunicorn-log", help="With --url: gunicorn's error log, to find failed boots."),
    ] = None,
    queue_url: Annotated[
        str | None,
        typer.Option("--queue-url", help="With --url: the message queue of several app servers (redis://…)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="The static file to prove freshness with (default: the first one)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Machine-readable report (schema: devstack/doctor/report.schema.json)."),
    ] = False,
    list_checks: Annotated[bool, typer.Option("--list-checks", help="List the checks and exit.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Evidence for passing checks too.")
    ] = False,
    fail_level: Annotated[
        str, typer.Option("--fail-level", help="Exit 1 from this level up: error (default) or warning.")
    ] = "error",
    insecure: Annotated[
        bool, typer.Option("--insecure", help="https: accept certificates that do not verify (self-signed).")
    ] = False,
    cacert: Annotated[
        Path | None,
        typer.Option("--cacert", help="https: trust this CA too (a local one, e.g. mkcert's rootCA.pem)."),
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            help="The project folder whose Procfile, units, compose files and gunicorn.conf.py to read.",
        ),
    ] = None,
    color: ColorOpt = ColorMode.auto,
) -> None:
    """Diagnose stale static files and the other classic faults of this stack.

    Exit 0 when no check finds an error (--fail-level warning: nor a warning), 1 otherwise.
    """
    from devstack.commands import doctor as cmd

    console.configure(color)
    raise typer.Exit(
        cmd.run(
            checks or [],
            config,
            url=url,
            nginx_conf=nginx_conf,
            static_dir=static_dir,
            static_url=static_url,
            app_url=app_url,
            gunicorn_log=gunicorn_log,
            queue_url=queue_url,
            file=file,
            as_json=as_json,
            list_checks=list_checks,
            verbose=verbose,
            fail_level=fail_level,
            insecure=insecure,
            cacert=cacert,
            project=project,
            env=env_mod.current(),
        )
    )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
) -> None:
    """Write a commented devstack.toml for the project (never overwrites)."""
    from devstack.commands import init as cmd
    from devstack.commands._common import from_cwd

    raise typer.Exit(cmd.run(from_cwd(path).resolve(), env=env_mod.current()))


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(argv))


def run_cli(argv: list[str] | None = None, env: Env | None = None) -> int:
    """One CLI call: its exit code. env (default: this process's streams, environ and folder) is
    where everything goes, typer's own help and usage text included."""
    env = env if env is not None else Env()
    args = with_aliases(sys.argv[1:] if argv is None else argv)
    with env_mod.using(env), contextlib.ExitStack() as streams:
        if env.stdout is not None:
            streams.enter_context(contextlib.redirect_stdout(env.stdout))
        if env.stderr is not None:
            streams.enter_context(contextlib.redirect_stderr(env.stderr))
        return boundary.guarded(lambda: _run(args, env))


def _run(args: list[str], env: Env) -> int:
    # status/logs/down written plainly skip typer's pydantic coercion (speed/fastpath.py).
    from devstack.cli import plain

    fast = plain.run(args)
    if fast is not None:
        return fast
    try:
        result = app(args=args, prog_name="devstack", standalone_mode=False)
        return int(result or 0)
    # typer >= 0.26 vendors Click: its exceptions are typer's, and `click` may not be installed.
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return int(Exit.INTERRUPTED)
    except typer.TyperException as exc:  # usage errors (unknown option, missing argument, bare `devstack`)
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=env.err())  # the usage line and the error, or the help text for a bare `devstack`
        else:
            env.err().write(f"Error: {exc.format_message()}\n")
        return int(Exit.USAGE)
