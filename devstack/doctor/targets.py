"""Building the doctor's Target: from devstack.toml (a stack devstack runs) or from options."""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Callable
from pathlib import Path

import psutil

from devstack.doctor.context import Target
from devstack.errors import DevstackError
from devstack.project.config import Config
from devstack.stack import facts, plan, state


def nginx_binary() -> str | None:
    from devstack.backends.local import find_nginx

    try:
        return find_nginx()
    except DevstackError:
        return None


def from_config(config: Config) -> Target:
    current = state.read(config.state_dir)
    running = bool(
        current is not None
        and current.supervisor is not None
        and current.supervisor.alive()
        and current.status in ("ready", "starting")
    )
    conf = config.state_dir / "nginx.conf"
    module = config.app_dir.joinpath(*config.app.module.split("."))
    module_file = module.with_suffix(".py") if module.with_suffix(".py").is_file() else module / "__init__.py"
    public = config.public_url
    if current is not None and current.mode == "vm" and current.url:
        public = current.url  # the host side of the port forward
    return Target(
        public_url=public,
        static_dir=config.static_dir if config.has_static else None,
        static_prefix=config.static.url,
        nginx_conf=conf if conf.is_file() else None,
        nginx_prefix=config.state_dir.resolve(),
        nginx_bin=nginx_binary(),
        app_url=f"http://127.0.0.1:{config.server.app_port}",
        gunicorn_log=config.state_dir / "logs" / "gunicorn.log",
        managed=True,
        running=running,
        config_path=config.path,
        app_worker=config.app.worker,
        app_module_file=module_file,
        wanted_ports={
            "public": (config.server.listen_host, config.server.listen_port),
            "app": ("127.0.0.1", config.server.app_port),
        },
        guest_sha=guest_hasher(config) if current is not None and current.mode == "vm" else None,
        own_pids=_own_pids(current) if running and current is not None else frozenset(),
        queue_url=plan.queue_url_with(config, facts.read_queue_secret(config.state_dir)),
        # A failed `up` stops its stack but keeps its state.json, with the error it printed.
        project_dir=config.root,
        last_failure=current.error or "not ready"
        if current is not None and current.status == "failed" and not running
        else "",
    )


def _own_pids(current: state.StackState) -> frozenset[int]:
    """The stack's recorded processes and their children (nginx and gunicorn workers)."""
    pids: set[int] = set()
    for record in current.processes.values():
        proc = record.process()
        if proc is None:
            continue
        pids.add(proc.pid)
        try:
            pids.update(child.pid for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    return frozenset(pids)


def guest_hasher(config: Config) -> Callable[[Path], str | None] | None:
    """VM mode: sha256 of the guest's copy of a file, via the VM helper's run_in_guest
    (devstack.vm.guest: (config, shell command, timeout) -> (exit code, stdout, stderr))."""
    try:
        guest = importlib.import_module("devstack.vm.guest")
    except ImportError:
        return None
    run: Callable[..., tuple[int, str, str]] | None = getattr(guest, "run_in_guest", None)
    if run is None:
        return None
    # The project's own Vagrantfile decides where the files are in the guest.
    config = importlib.import_module("devstack.vm.vagrantfile").gather(config).config

    def sha(file: Path) -> str | None:
        path = config.vm.guest_path.rstrip("/") + "/" + file.relative_to(config.root).as_posix()
        try:
            code, out, _ = run(config, f"sha256sum {shlex.quote(path)}", timeout=30.0)
        except (OSError, DevstackError):
            return None
        return out.split()[0] if code == 0 and out.strip() else None

    return sha


def from_options(
    url: str,
    nginx_conf: Path | None,
    static_dir: Path | None,
    static_url: str,
    app_url: str | None,
    gunicorn_log: Path | None,
    queue_url: str | None = None,
) -> Target:
    if nginx_conf is not None and not nginx_conf.is_file():
        raise DevstackError(f"--nginx-conf {nginx_conf}: no such file")
    if static_dir is not None and not static_dir.is_dir():
        raise DevstackError(f"--static-dir {static_dir}: no such folder")
    stripped = static_url.strip("/")
    prefix = f"/{stripped}/" if stripped else "/"  # --static-url / is the site root, not //
    return Target(
        public_url=url.rstrip("/"),
        static_dir=static_dir.resolve() if static_dir else None,
        static_prefix=prefix,
        nginx_conf=nginx_conf,
        nginx_bin=nginx_binary(),
        app_url=app_url.rstrip("/") if app_url else None,
        gunicorn_log=gunicorn_log,
        queue_url=queue_url or "",
    )
