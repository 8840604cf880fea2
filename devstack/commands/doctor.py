"""`devstack doctor`: diagnose stale static files and the classic faults of this stack."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.text import Text

from devstack.commands._common import load_config
from devstack.doctor import guest as doctor_guest
from devstack.doctor import registry, render, runner, targets
from devstack.doctor.context import Context, Target
from devstack.doctor.model import CheckSpec, Result
from devstack.errors import ConfigError, DevstackError, Exit
from devstack.project import config as config_mod
from devstack.system import env as env_mod
from devstack.system.env import Env


def run(
    checks: list[str],
    config_path: Path | None = None,
    url: str | None = None,
    nginx_conf: Path | None = None,
    static_dir: Path | None = None,
    static_url: str = "/static/",
    app_url: str | None = None,
    gunicorn_log: Path | None = None,
    queue_url: str | None = None,
    file: Path | None = None,
    as_json: bool = False,
    list_checks: bool = False,
    verbose: bool = False,
    fail_level: str = "error",
    insecure: bool = False,
    cacert: Path | None = None,
    project: Path | None = None,
    env: Env | None = None,
) -> int:
    env = env or env_mod.current()
    if fail_level not in runner.FAIL_LEVELS:
        raise DevstackError(f"--fail-level {fail_level!r}: use error or warning", Exit.USAGE)
    chosen, unknown = registry.select(checks)
    if unknown:
        known = ", ".join(sorted(registry.REGISTRY))
        raise DevstackError(f"unknown check {unknown[0]!r} — known: {known}", Exit.USAGE)
    if list_checks:
        render.print_list(chosen, env.console("out"))
        return int(Exit.OK)
    ignored: tuple[str, ...] = ()
    if url is not None:
        target = targets.from_options(
            url, nginx_conf, static_dir, static_url, app_url, gunicorn_log, queue_url
        )
    else:
        if nginx_conf is not None or static_dir is not None:
            raise DevstackError(
                "--nginx-conf and --static-dir describe a stack devstack did not start: pass --url too",
                Exit.USAGE,
            )
        if config_path is None:
            try:
                config_path = config_mod.find_config(env.working_dir())
            except ConfigError as exc:
                raise DevstackError(
                    f"{exc}; or diagnose a stack devstack did not start: "
                    "devstack doctor --url URL [--nginx-conf PATH] "
                    "[--static-dir DIR]"
                ) from None
        loaded = load_config(config_path)
        target = targets.from_config(loaded)
        chosen, ignored = _without_ignored(chosen, loaded)
    target.insecure = insecure
    if cacert is not None:
        if not cacert.is_file():
            raise DevstackError(f"--cacert {cacert}: no such file", Exit.USAGE)
        target.cacert = cacert.resolve()
    if project is not None and not project.is_dir():
        raise DevstackError(f"--project {project}: no such folder", Exit.USAGE)
    # The project that declares gunicorn: --project, devstack.toml's folder, else where doctor runs.
    target.project_dir = (project or target.project_dir or env.working_dir()).resolve()
    if file is not None:
        target.sample = _sample(file, target.static_dir)
    ctx = Context(target)
    vm_config = load_config(config_path) if url is None and config_path is not None else None
    if vm_config is not None and doctor_guest.in_vm_mode(vm_config):
        from devstack.vm import vagrantfile

        vm_config = vagrantfile.gather(vm_config).config  # the guest path of the user's Vagrantfile
        # nginx and gunicorn run in the guest: their checks run there, the rest through the forward.
        host_side = [spec for spec in chosen if spec.area not in doctor_guest.GUEST_ONLY_AREAS]
        return _with_guest(runner.run(host_side, ctx), ctx, vm_config, checks, as_json, verbose, env)
    results = runner.run(chosen, ctx)
    if url is None and config_path is not None:
        results += _each_static_route(chosen, target, load_config(config_path))
    if as_json:
        render.print_json(results, ctx, fail_level, ignored, env)
    else:
        render.print_rich(results, ctx, env.console("out"), verbose, ignored)
    return runner.exit_code(results, fail_level)


def _each_static_route(chosen: list[CheckSpec], target: Target, config: config_mod.Config) -> list[Result]:
    """The static checks again for every other static folder nginx serves (a blueprint's,
    [[static.extra]]): each finding names its route."""
    static = [spec for spec in chosen if spec.area == "static"]
    results: list[Result] = []
    for route_url, folder in config.static_routes:
        if not static or (route_url == target.static_prefix and folder == target.static_dir):
            continue
        routed = dataclasses.replace(target, static_dir=folder, static_prefix=route_url, sample=None)
        for result in runner.run(static, Context(routed)):
            result.outcome.finding = f"{route_url}: {result.outcome.finding}"
            results.append(result)
    return results


def _without_ignored(
    chosen: list[CheckSpec], config: config_mod.Config
) -> tuple[list[CheckSpec], tuple[str, ...]]:
    """[doctor] ignore = ["id", "area.*"]: those checks are not run (and said so)."""
    patterns = list(config.doctor.ignore)
    if not patterns:
        return chosen, ()
    matched, unknown = registry.select(patterns)
    if unknown:
        raise ConfigError(
            str(config.path),
            "doctor.ignore",
            f"{unknown[0]!r} is no check ID, area or glob",
            "use the IDs `devstack doctor --list-checks` prints",
        )
    drop = {spec.id for spec in matched}
    return [spec for spec in chosen if spec.id not in drop], tuple(sorted(drop))


def _with_guest(
    results: list[Result],
    ctx: Context,
    config: config_mod.Config,
    checks: list[str],
    as_json: bool,
    verbose: bool,
    env: Env,
) -> int:
    """VM mode: the host's view through the forward, then the same doctor inside the guest."""
    host_code = runner.exit_code(results)
    guest = doctor_guest.run(config, as_json, [c for c in checks if not c.startswith("net")])
    worst = max(host_code, 1 if guest.exit_code != 0 else 0)
    if as_json:
        # One document per line of sight: the schema describes each; "guest" holds the second.
        document: dict[str, object] = {"host": render.to_json(results, ctx), "guest": guest.report}
        document.update(guest_clock_skew_s=guest.clock_skew, exit_code=worst)
        env.write_json(document)
        return worst
    out = env.console("out")
    render.print_rich(results, ctx, out, verbose)
    out.print()
    out.print("[bold]inside the VM[/] (the same checks, run by the guest on its own stack)")
    if guest.clock_skew is not None:
        mark = "[green]✓[/]" if abs(guest.clock_skew) < 2 else "[yellow]![/]"
        out.print(
            f"{mark} clock: the guest is {guest.clock_skew:+.2f} s from the host "
            "(Last-Modified and watchers need them within a second or two)"
        )
    out.print(Text.from_ansi(guest.text.rstrip()) if guest.text else "")
    return worst


def _sample(file: Path, static_dir: Path | None) -> Path:
    if static_dir is None:
        raise DevstackError("--file needs a static folder (--static-dir or devstack.toml)", Exit.USAGE)
    path = file if file.is_absolute() else static_dir / file
    path = path.resolve()
    if not path.is_file() or static_dir not in path.parents:
        raise DevstackError(f"--file {file}: not a file inside {static_dir}", Exit.USAGE)
    return path
