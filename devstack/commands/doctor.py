"""`devstack doctor`: diagnose stale static files and the classic faults of this stack."""

from __future__ import annotations

from pathlib import Path

from devstack import config as config_mod
from devstack import console
from devstack.commands._common import load_config
from devstack.doctor import registry, render, runner, targets
from devstack.doctor.context import Context
from devstack.errors import ConfigError, DevstackError, Exit


def run(checks: list[str], config_path: Path | None = None, url: str | None = None,
        nginx_conf: Path | None = None, static_dir: Path | None = None,
        static_url: str = "/static/", app_url: str | None = None,
        gunicorn_log: Path | None = None, file: Path | None = None, as_json: bool = False,
        list_checks: bool = False, verbose: bool = False) -> int:
    chosen, unknown = registry.select(checks)
    if unknown:
        known = ", ".join(sorted(registry.REGISTRY))
        raise DevstackError(f"unknown check {unknown[0]!r} — known: {known}", Exit.USAGE)
    if list_checks:
        render.print_list(chosen, console.out())
        return int(Exit.OK)
    if url is not None:
        target = targets.from_options(url, nginx_conf, static_dir, static_url, app_url,
                                      gunicorn_log)
    else:
        if nginx_conf is not None or static_dir is not None:
            raise DevstackError("--nginx-conf and --static-dir describe a stack devstack did not "
                                "start: pass --url too", Exit.USAGE)
        if config_path is None:
            try:
                config_path = config_mod.find_config(Path.cwd())
            except ConfigError as exc:
                raise DevstackError(f"{exc}; or diagnose a stack devstack did not start: "
                                    "devstack doctor --url URL [--nginx-conf PATH] "
                                    "[--static-dir DIR]") from None
        target = targets.from_config(load_config(config_path))
    if file is not None:
        target.sample = _sample(file, target.static_dir)
    ctx = Context(target)
    results = runner.run(chosen, ctx)
    if as_json:
        render.print_json(results, ctx)
    else:
        render.print_rich(results, ctx, console.out(), verbose)
    return runner.exit_code(results)


def _sample(file: Path, static_dir: Path | None) -> Path:
    if static_dir is None:
        raise DevstackError("--file needs a static folder (--static-dir or devstack.toml)",
                            Exit.USAGE)
    path = file if file.is_absolute() else static_dir / file
    path = path.resolve()
    if not path.is_file() or static_dir not in path.parents:
        raise DevstackError(f"--file {file}: not a file inside {static_dir}", Exit.USAGE)
    return path
