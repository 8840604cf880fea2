"""Config -> plan: the rendered nginx.conf and the process specs. Pure apart from reading versions.

Nothing here starts a process or prints; the supervisor runs what the plan says.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from devstack import apppython, envfiles, fsinfo, procfile, safefs, templates
from devstack.config import RESERVED_NAMES, Config
from devstack.errors import ConfigError, DevstackError
from devstack.live import paths as live_paths

ASYNC_MODES = {"gthread": "threading", "gevent": "gevent", "eventlet": "eventlet"}
# What each worker needs besides gunicorn, as pip names (in the install hints).
WORKER_PACKAGES = {"gthread": ("simple-websocket",), "gevent": ("gevent",), "eventlet": ("eventlet",)}
# Where nginx keeps its pid and temp files: all under the state dir, nothing under /etc or /var.
NGINX_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    # Log source names for the child's two streams (nginx: access on stdout, errors on stderr).
    stdout_source: str = ""
    stderr_source: str = ""
    # "app": restarted on code change and with backoff; "always": with backoff.
    restart: str = "always"
    # What `stop` sends the group first (then KILL after the grace period).
    stop_signal: str = "SIGTERM"

    def source(self, stream: str) -> str:
        chosen = self.stdout_source if stream == "stdout" else self.stderr_source
        return chosen or self.name


@dataclass(frozen=True)
class Plan:
    config: Config
    nginx_conf: str
    processes: list[ProcessSpec]
    warnings: list[str]
    reload_engine: str  # the engine actually used: devstack | inotify | poll | off
    sendfile: bool
    static_fstype: str
    colors: bool = True  # children asked to keep their colors (a re-plan must ask the same)
    app_python: apppython.AppPython | None = None  # the interpreter gunicorn runs under, and why


def nginx_mime_types() -> str | None:
    for candidate in (
        "/etc/nginx/mime.types",
        "/usr/local/nginx/conf/mime.types",
        "/opt/homebrew/etc/nginx/mime.types",
        "/usr/local/etc/nginx/mime.types",
    ):
        if Path(candidate).is_file():
            return candidate
    return None


def render_nginx(config: Config, sendfile: bool, static_fstype: str) -> str:
    state = config.state_dir.resolve()
    mime = nginx_mime_types()
    text = templates.render(
        "nginx.conf.j2",
        prefix=str(state),
        listen=_nginx_listen(config.server.listen_host, config.server.listen_port),
        app_port=config.server.app_port,
        static_url=config.static.url,
        static_dir=str(live_paths.static_alias(state, config.static_dir)) if config.has_static else "",
        autoindex=config.server.autoindex,
        sendfile=sendfile,
        static_fstype=static_fstype,
        proxy_read_timeout=config.server.proxy_read_timeout,
        mime_types=mime or str(state / "mime.types"),
        error_log_level="warn",
        user=_worker_user(config),
        live_socket=str(live_paths.stream_socket(state)) if config.server.live_reload else "",
        live_notify=str(live_paths.notify_socket(state)),
    )
    return text


def _worker_user(config: Config) -> str:
    if os.geteuid() != 0:
        return ""  # nginx ignores `user` unless started as root
    import grp
    import pwd

    st = (config.static_dir if config.has_static else config.app_dir).stat()
    try:
        return f"{pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name}"
    except KeyError:
        return ""


def _nginx_listen(host: str, port: int) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def build(config: Config, python: str | None = None, colors: bool = True) -> Plan:
    """The whole stack from the config. `python` forces the app's interpreter (the VM agent runs
    the app in its own venv); otherwise apppython.py finds it (app.python, $VIRTUAL_ENV, .venv)."""
    warnings: list[str] = []
    app = apppython.find(config, python)
    served = config.static_dir if config.has_static else config.app_dir
    fstype = fsinfo.fstype(served)
    shared = fsinfo.is_shared(fstype)
    if not config.has_static:
        warnings.append(
            f"no static folder ({config.static_dir} does not exist): nginx proxies every path to "
            "gunicorn and the freshness watcher has nothing to watch"
        )
    if config.server.sendfile == "auto":
        sendfile = not shared
    else:
        sendfile = config.server.sendfile == "on"
        if sendfile and shared:
            warnings.append(
                f"sendfile is on but {served} is on {fstype}: nginx may serve "
                'stale or truncated files — set server.sendfile = "auto"'
            )

    engine = config.app.reload_engine if config.app.reload else "off"
    worker = config.app.worker
    version = app.gunicorn
    shown = str(config.path.name)
    if version is None:
        raise DevstackError(
            f"gunicorn is not installed in the app's python {app.path} ({app.why}) — "
            f"{app.install_hint('gunicorn>=23', *WORKER_PACKAGES[worker])}"
        )
    if worker == "eventlet":
        if version >= (26,):
            raise ConfigError(
                shown,
                "app.worker",
                f"gunicorn {'.'.join(map(str, version))} has no eventlet worker (removed in 26.0)",
                'use worker = "gthread" (or "gevent"), or pin gunicorn<26',
            )
        warnings.append(
            "the eventlet worker is deprecated and gone in gunicorn 26+; "
            'eventlet itself is bug-fix-only — prefer worker = "gthread"'
        )
    if worker == "gevent" and not app.importable("gevent"):
        raise ConfigError(
            shown,
            "app.worker",
            f"gevent is not installed in the app's python {app.path}",
            f'{app.install_hint("gevent")}, or use worker = "gthread"',
        )
    source = _app_source(config)  # read once: the checks below look for names in it
    uses_socketio = "flask_socketio" in source
    if uses_socketio and not app.importable("flask_socketio"):
        raise DevstackError(
            f"{config.app.module} imports flask_socketio, which is not installed in the app's python "
            f"{app.path} ({app.why}) — {app.install_hint('flask-socketio', *WORKER_PACKAGES[worker])}"
        )
    if uses_socketio and worker == "gthread" and not app.importable("simple_websocket"):
        warnings.append(
            f"simple-websocket is not installed in the app's python {app.path}: Socket.IO falls back "
            f"to long-polling under gthread — {app.install_hint('simple-websocket')}"
        )
    if engine == "inotify" and not app.importable("inotify"):
        warnings.append(
            f"reload_engine inotify replaced by poll: the inotify package is not installed in "
            f"{app.path} ({app.install_hint('inotify')})"
        )
        engine = "poll"
    if engine == "inotify" and (worker == "gevent" or shared):
        why = "it crashes gevent workers at boot" if worker == "gevent" else f"inotify misses {fstype} edits"
        warnings.append(f"reload_engine inotify replaced by poll: {why}")
        engine = "poll"
    if app.importable("eventlet") and worker != "eventlet" and "async_mode" not in source:
        warnings.append(
            f"eventlet is importable and {config.app.module} does not set async_mode: "
            "Flask-SocketIO will pick eventlet and hang under the "
            f"{worker} worker — pass async_mode='{ASYNC_MODES[worker]}' to SocketIO()"
        )

    nginx_conf = render_nginx(config, sendfile, fstype)
    dotenv = envfiles.load(config.root)  # .flaskenv/.env, for gunicorn and the extra processes
    processes = [gunicorn_spec(config, app.path, engine, version, colors, dotenv), nginx_spec(config)]
    processes += extra_specs(config, warnings, colors, dotenv)
    return Plan(
        config=config,
        nginx_conf=nginx_conf,
        processes=processes,
        warnings=warnings,
        reload_engine=engine,
        sendfile=sendfile,
        static_fstype=fstype,
        colors=colors,
        app_python=app,
    )


def _app_source(config: Config) -> str:
    """The app module's source text (module.py and/or module/__init__.py; "" if unreadable):
    names in it are searched for, because the app is never imported in devstack's process."""
    module_path = config.app_dir.joinpath(*config.app.module.split("."))
    texts = []
    for candidate in (module_path.with_suffix(".py"), module_path / "__init__.py"):
        try:
            texts.append(candidate.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return "\n".join(texts)


def extra_specs(
    config: Config, warnings: list[str], colors: bool = True, dotenv: dict[str, str] | None = None
) -> list[ProcessSpec]:
    """[processes] in devstack.toml and the Procfile's processes, with .env in their environment."""
    commands = {}
    for name, command in procfile.read_procfile(config.root).items():
        if name in procfile.SKIPPED or name in RESERVED_NAMES:
            warnings.append(f"Procfile process {name!r} skipped: devstack runs the app and nginx itself")
        elif name in config.processes:
            warnings.append(
                f"process {name!r} is in the Procfile and in {config.path.name}: "
                f"the {config.path.name} command runs"
            )
        else:
            commands[name] = command
    commands.update(config.processes)
    if not commands:
        return []
    env = {**(envfiles.load(config.root) if dotenv is None else dotenv), **child_env(config, colors)}
    return [
        ProcessSpec(
            name=name, argv=["/bin/sh", "-c", f"exec {command}"], cwd=config.root, env=env, restart="always"
        )
        for name, command in commands.items()
    ]


def child_env(config: Config, colors: bool = True) -> dict[str, str]:
    """Environment additions every child gets (the supervisor merges them over os.environ)."""
    return {
        "PYTHONUNBUFFERED": "1",
        "DEVSTACK": "1",
        "DEVSTACK_PUBLIC_URL": config.public_url,
        "DEVSTACK_ASYNC_MODE": ASYNC_MODES[config.app.worker],
        **color_env(colors),
        **config.app.env,
    }


def color_env(colors: bool) -> dict[str, str]:
    """Children write to a pipe, where most tools turn color off: ask them to keep it (devstack
    strips the codes again wherever its own output is not colored). NO_COLOR wins, as it should."""
    if not colors or os.environ.get("NO_COLOR"):
        return {"NO_COLOR": "1"}
    return {"FORCE_COLOR": "1", "CLICOLOR_FORCE": "1", "PY_COLORS": "1"}


def gunicorn_spec(
    config: Config,
    python: str,
    engine: str,
    version: tuple[int, ...] | None,
    colors: bool = True,
    dotenv: dict[str, str] | None = None,
) -> ProcessSpec:
    argv = [
        python,
        "-m",
        "gunicorn",
        "--config",
        str(Path(__file__).with_name("gunicorn_conf.py")),
        "--chdir",
        str(config.app_dir),
        "--bind",
        f"127.0.0.1:{config.server.app_port}",
        "--workers",
        "1",  # Socket.IO keeps session state in the one process
        "--worker-class",
        config.app.worker,
        "--graceful-timeout",
        "3",  # dev: open websockets must not hold a restart for 30 s
        "--timeout",
        "120",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "--log-level",
        "info",
    ]
    if config.app.worker == "gthread":
        argv += ["--threads", str(config.app.threads)]
    if version is not None and version >= (25, 1):
        # Otherwise gunicorn writes a control socket into $HOME, shared by every stack.
        argv += ["--control-socket", str(live_paths.control_socket(config.state_dir))]
    if engine in ("inotify", "poll"):
        argv += ["--reload", "--reload-engine", engine]
        for pattern in config.app.reload_extra:
            argv += ["--reload-extra-file", str(config.app_dir / pattern)]
    argv.append(config.app.wsgi)
    # .flaskenv/.env first: devstack's own variables and [app.env] are set over them.
    env = {**(dotenv or {}), **child_env(config, colors)}
    env["DEVSTACK_WORKER"] = config.app.worker
    env["GUNICORN_CMD_ARGS"] = ""  # a stray shell setting must not change the dev server
    if config.server.live_reload:  # gunicorn_conf.py's post_worker_init says "new code serves" here
        env["DEVSTACK_LIVE_NOTIFY"] = str(live_paths.notify_socket(config.state_dir))
    # SIGQUIT is gunicorn's quick shutdown: TERM is graceful, and a gthread worker notices it
    # only at its next 1 s poll (down took 0.6 s for gunicorn alone). A dev server's in-flight
    # request may be cut short; nothing else is lost.
    return ProcessSpec(
        name="gunicorn", argv=argv, cwd=config.app_dir, env=env, restart="app", stop_signal="SIGQUIT"
    )


def nginx_spec(config: Config, nginx: str = "nginx") -> ProcessSpec:
    state = config.state_dir.resolve()
    return ProcessSpec(
        name="nginx",
        argv=[nginx, "-p", str(state), "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"],
        cwd=state,
        env={},
        stdout_source="nginx.access",
        stderr_source="nginx.error",
        restart="always",
    )


def prepare_state_dir(config: Config) -> None:
    state = config.state_dir
    # nginx writes its pid and temp files here and follows symlinks: refuse any planted one.
    safefs.check_tree(state)
    safefs.ensure_dir(state)
    os.chmod(state, 0o755)
    for name in NGINX_TEMP_DIRS:
        safefs.ensure_dir(state / "tmp")
        safefs.ensure_dir(state / "tmp" / name)
    safefs.write_text(state / ".gitignore", "*\n")
    folder = live_paths.ensure_socket_dir(state)  # deep project paths: sockets in a short folder
    link = live_paths.static_alias(state, config.static_dir)
    if link != config.static_dir:  # a "$" in the path: nginx reaches the static folder by a link
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / link.name)
        os.symlink(config.static_dir, folder / link.name)
    if nginx_mime_types() is None:
        safefs.write_text(state / "mime.types", MIME_FALLBACK)


MIME_FALLBACK = """types {
    text/html html htm;
    text/css css;
    application/javascript js mjs;
    application/json json map;
    image/png png;
    image/jpeg jpg jpeg;
    image/gif gif;
    image/svg+xml svg;
    image/x-icon ico;
    font/woff woff;
    font/woff2 woff2;
    text/plain txt;
}
"""
