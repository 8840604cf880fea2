"""Config + host facts -> plan: the rendered nginx.conf and the process specs. No I/O.

Everything read from the machine or the project's files comes in a HostFacts (facts.gather);
nothing here reads, starts a process or prints; the supervisor runs what the plan says.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import GUNICORN_CONF
from devstack.errors import ConfigError, DevstackError
from devstack.project import apppython, procfile
from devstack.project import config as config_mod
from devstack.project.config import RESERVED_NAMES, Config
from devstack.stack import rootstatic, templates
from devstack.stack.facts import HostFacts
from devstack.system import fsinfo

ASYNC_MODES = {"gthread": "threading", "gevent": "gevent", "eventlet": "eventlet"}
# What each worker needs besides gunicorn, as pip names (in the install hints).
WORKER_PACKAGES = {
    "gthread": ("simple-websocket",),
    "gevent": ("gevent", "packaging"),
    "eventlet": ("eventlet",),
}


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: what to run, where, and how it is restarted and stopped."""

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
    # The child asks for PR_SET_PDEATHSIG itself (gunicorn_conf.py), so it needs no wrapper.
    own_deathsig: bool = False

    def source(self, stream: str) -> str:
        chosen = self.stdout_source if stream == "stdout" else self.stderr_source
        return chosen or self.name


@dataclass(frozen=True)
class Plan:
    """What `up` runs for a config on this machine, decided from HostFacts alone."""

    config: Config
    facts: HostFacts  # what build() decided from (reconfigure keeps the nginx binary, the state dir)
    processes: list[ProcessSpec]
    warnings: list[str]
    reload_engine: str  # the engine actually used: devstack | inotify | poll | off
    sendfile: bool
    static_fstype: str
    colors: bool = True  # children asked to keep their colors (a re-plan must ask the same)
    app_python: apppython.AppPython | None = None  # the interpreter gunicorn runs under, and why
    notes: list[str] = field(default_factory=list)  # said once at start: what devstack did for the app

    @functools.cached_property
    def nginx_conf(self) -> str:
        # Rendered when first written, not in build(): jinja2's import and the render then
        # happen while gunicorn boots instead of before it starts (`up` -> ready, issue 13).
        return render_nginx(self.config, self.facts, self.sendfile)


def render_nginx(config: Config, facts: HostFacts, sendfile: bool) -> str:
    return templates.render(
        "nginx.conf.j2",
        **nginx_values(config, facts, sendfile),
    )


_SERVER_NAME_RE = re.compile(r"[A-Za-z0-9_.*:\[\]-]+")  # one nginx word, nothing it reads as syntax
# What the Host header of a request to this stack may name, besides server.listen's host.
# *.localhost is loopback by definition (RFC 6761: browsers never ask DNS for it).
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]", "*.localhost")


def server_names(config: Config) -> list[str]:
    """nginx's server_name: the listen address (unless it is every interface), localhost,
    127.0.0.1, [::1] and *.localhost (the VM's forward arrives as 127.0.0.1:host_port), and
    server.hosts (a LAN name or address, for a stack listening on 0.0.0.0)."""
    host = config.server.listen_host
    names = [] if host in ("0.0.0.0", "::", "*") else [f"[{host}]" if ":" in host else host]
    for name in (*LOCAL_NAMES, *config.server.hosts):
        if name not in names:
            names.append(name)
    return names


def nginx_values(config: Config, facts: HostFacts, sendfile: bool) -> dict[str, Any]:
    """Every value nginx.conf.j2 is rendered from, checked: the one place both `up` and the live
    re-plan of an edited devstack.toml go through (build() calls it, so a bad value stops either
    before anything is written). A URL path or host name must match what it may be (no nginx
    syntax can pass); a folder may not hold a control character or a NUL; everything else is
    a number or a boolean, or quoted by the template (nginx_quote)."""
    state = facts.state_dir
    shown = config.path.name
    for url in [config.static.url, *(url for url, _ in facts.extra_static)]:
        if not config_mod.is_url_path(url):
            raise ConfigError(shown, "static.url", f"{url!r} is not a URL path", 'write e.g. "/static/"')
    names = server_names(config)
    for name in names:
        if not _SERVER_NAME_RE.fullmatch(name):
            key = "server.hosts" if name in config.server.hosts else "server.listen"
            raise ConfigError(shown, key, f"{name!r} is not a host name", 'write e.g. "devbox.lan"')
    paths = {
        "the project folder": state,
        "static.dir": facts.static_alias,
        **{f"[[static.extra]] {url}": folder for url, folder in facts.extra_static},
        "the live-reload socket": facts.stream_socket,
        "the live-reload socket ": facts.notify_socket,
    }
    for key, folder in paths.items():
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in str(folder)):
            raise ConfigError(
                shown, key, f"{str(folder)!r} holds a control character nginx.conf cannot carry", "rename it"
            )
    return dict(
        prefix=str(state),
        listen=_nginx_listen(config.server.listen_host, config.server.listen_port),
        app_port=config.server.app_port,
        app_ports=[str(port) for port in config.app_ports],
        node_split=[{"share": share, "node": str(node)} for share, node in node_split(config.app.nodes)],
        node_cookie=NODE_COOKIE,
        static_url=config.static.url,
        static_dir=str(facts.static_alias) if facts.has_static else "",
        extra_static=[{"url": url, "dir": str(folder)} for url, folder in facts.extra_static],
        autoindex=config.server.autoindex,
        sendfile=sendfile,
        static_fstype=facts.static_fstype,
        proxy_read_timeout=config.server.proxy_read_timeout,
        mime_types=facts.mime_types or str(state / "mime.types"),
        error_log_level="warn",
        user=facts.worker_user,
        live_socket=str(facts.stream_socket) if config.server.live_reload else "",
        live_notify=str(facts.notify_socket),
        server_names=names,
        root_private=rootstatic.NGINX_REGEX,
    )


REDIS_CONF = "redis.conf"
# The cookie nginx sets on a client's first request, naming the node it sticks to (app.nodes > 1).
NODE_COOKIE = "devstack_node"


def node_split(nodes: int) -> list[tuple[str, int]]:
    """split_clients' shares of new clients: ("33.33%", 1), ("33.33%", 2), ("*", 3)."""
    share = int(10000 / nodes) / 100
    return [(f"{share:.2f}%", index) for index in range(1, nodes)] + [("*", nodes)]


def _nginx_listen(host: str, port: int) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def build(config: Config, facts: HostFacts, colors: bool = True) -> Plan:
    """The whole stack from the config and the host's facts (facts.gather): no I/O here."""
    warnings: list[str] = []
    app = facts.app_python
    served = facts.static_dir if facts.has_static else facts.app_dir
    fstype = facts.static_fstype
    shared = fsinfo.is_shared(fstype)
    if not facts.has_static:
        warnings.append(
            f"no static folder ({facts.static_dir} does not exist): nginx proxies every path to "
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
    if worker == "gevent" and version >= (26,) and not app.importable("packaging"):
        # gunicorn's gevent worker imports packaging, a dependency of gunicorn itself until 25
        # and of its gevent extra since 26: `pip install gunicorn gevent` boots no worker.
        raise ConfigError(
            shown,
            "app.worker",
            f"gunicorn {app.gunicorn_shown}'s gevent worker needs packaging, which gunicorn 26+ "
            f"installs only with its gevent extra (not installed in {app.path})",
            f'{app.install_hint("gunicorn[gevent]")}, or use worker = "gthread"',
        )
    if facts.uses_socketio and not app.importable("flask_socketio"):
        raise DevstackError(
            f"{config.app.module} imports flask_socketio, which is not installed in the app's python "
            f"{app.path} ({app.why}) — {app.install_hint('flask-socketio', *WORKER_PACKAGES[worker])}"
        )
    if facts.uses_socketio and worker == "gthread" and not app.importable("simple_websocket"):
        warnings.append(
            f"simple-websocket is not installed in the app's python {app.path}: Socket.IO falls back "
            f"to long-polling under gthread — {app.install_hint('simple-websocket')}"
        )
    if facts.uses_socketio and config.queue.enabled and not app.importable("redis"):
        # Without it, every node's SocketIO(message_queue=...) retries "Cannot receive from
        # redis" forever and the proof can only count 0 subscribers.
        raise DevstackError(
            f"the message queue needs the redis package in the app's python {app.path} ({app.why}): "
            f"Flask-SocketIO's message_queue= cannot reach Redis without it — {app.install_hint('redis')}"
        )
    engineio = app.versions.get("python-engineio")
    eio = apppython.parse_version(engineio) or ()
    if (
        facts.uses_socketio
        and worker == "gthread"
        and (4,) <= eio < (4, 6)
        and app.importable("simple_websocket")
    ):
        # Measured: 4.5.1 under gunicorn 23.0.0 and 27.0.1 (gthread) fails so after every
        # websocket; 4.6.0 raises StopIteration there, as gunicorn expects, and is clean. (3.x
        # serves no websocket under threading: nothing fails, it long-polls.)
        raise DevstackError(
            f"python-engineio {engineio} in the app's python {app.path} ends every WebSocket under the "
            "gthread worker in \"AttributeError: 'Response' object has no attribute 'status_code'\" "
            f"(fixed in 4.6.0) — {app.install_hint('python-engineio>=4.6')}"
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
    notes = async_mode_notes(config, facts, warnings) if facts.uses_socketio else []

    nginx_values(config, facts, sendfile)  # a value nginx.conf cannot carry stops here, not in nginx
    child_colors = colors and not facts.no_color  # NO_COLOR wins, as it should
    if config.app.nodes == 1:
        processes = [gunicorn_spec(config, facts, engine, child_colors)]
    else:
        processes = [
            gunicorn_spec(config, facts, engine, child_colors, node=index)
            for index in range(1, config.app.nodes + 1)
        ]
    if config.queue.started:
        processes.append(redis_spec(config, facts))
    processes.append(nginx_spec(facts))
    processes += extra_specs(config, facts, warnings, child_colors)
    return Plan(
        config=config,
        facts=facts,
        processes=processes,
        warnings=warnings,
        reload_engine=engine,
        sendfile=sendfile,
        static_fstype=fstype,
        colors=colors,
        app_python=app,
        notes=notes,
    )


# Modes python-engineio would try that a worker cannot run; gunicorn_conf.py keeps the same table.
UNFIT_MODES = {"gthread": ("eventlet", "gevent"), "gevent": ("eventlet",)}


def auto_mode(app: apppython.AppPython) -> str:
    """The mode Flask-SocketIO picks when the app names none: the first that imports."""
    return next((mode for mode in ("eventlet", "gevent") if app.importable(mode)), "threading")


def async_mode_notes(config: Config, facts: HostFacts, warnings: list[str]) -> list[str]:
    """What the app's source asks of Socket.IO's async mode (project/asyncmode.py), against the
    worker: a mode the worker cannot run is one error line naming file:line and the fixes; an
    auto-detected one gunicorn_conf.py corrects is one note."""
    use, app, worker = facts.async_use, facts.app_python, config.app.worker
    version = app.gunicorn or ()
    gone = version >= (26,)
    if worker != "eventlet":
        site = use.wants_eventlet
        if site is not None:
            if gone:
                why = f"gunicorn {app.gunicorn_shown} has no eventlet worker (removed in 26.0)"
                pin = f'or pin gunicorn<26 ({app.install_hint("gunicorn<26")}) and set worker = "eventlet"'
            else:
                why = f"devstack runs the {worker} worker"
                pin = 'or set worker = "eventlet" in devstack.toml (deprecated; gone in gunicorn 26)'
            drop = " without eventlet.monkey_patch()" if site is use.eventlet_patch else ""
            raise DevstackError(
                f"{site.where}: {site.code} needs gunicorn's eventlet worker and {why} — "
                f"use SocketIO(app, async_mode='threading'){drop}, or async_mode='gevent' "
                f'with worker = "gevent" in {config.path.name}, {pin}'
            )
        explicit = use.explicit
        if explicit is not None and explicit[0] == "gevent" and worker == "gthread":
            raise DevstackError(
                f"{explicit[1].where}: {explicit[1].code} needs the gevent worker — set "
                f"worker = \"gevent\" in {config.path.name}, or use async_mode='threading'"
            )
        if use.gevent_patch is not None and worker == "gthread":
            warnings.append(
                f"{use.gevent_patch.where}: {use.gevent_patch.code} asks for the gevent worker, and "
                f'devstack runs gthread — set worker = "gevent" in {config.path.name}'
            )
    if not use.auto or worker not in UNFIT_MODES:
        return []
    picked, runs = auto_mode(app), ASYNC_MODES[worker]
    if picked not in UNFIT_MODES[worker]:
        return []
    site = use.servers[0]
    return [
        f"{site.where}: {site.code} names no async_mode, so Flask-SocketIO would pick {picked} "
        f"(installed), which the {worker} worker cannot run: devstack has it use {runs} — "
        f'make it explicit with SocketIO(app, async_mode="{runs}")'
    ]


def extra_specs(
    config: Config, facts: HostFacts, warnings: list[str], colors: bool = True
) -> list[ProcessSpec]:
    """[processes] in devstack.toml and the Procfile's processes, with .env in their environment."""
    commands = {}
    for name, command in facts.procfile.items():
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
    env = {**facts.dotenv, **child_env(config, colors), **venv_env(facts), **queue_env(config, facts)}
    return [
        ProcessSpec(
            name=name, argv=["/bin/sh", "-c", f"exec {command}"], cwd=config.root, env=env, restart="always"
        )
        for name, command in commands.items()
    ]


def venv_env(facts: HostFacts) -> dict[str, str]:
    """As if the app's venv were activated: its bin folder first on PATH (`rq worker`, `celery`
    resolve to the venv's console scripts) and VIRTUAL_ENV, when the app python is a venv's."""
    bin_dir = str(Path(facts.app_python.path).parent)
    rest = [p for p in facts.path.split(os.pathsep) if p and p != bin_dir]
    env = {"PATH": os.pathsep.join([bin_dir, *rest])}
    if facts.virtual_env:
        env["VIRTUAL_ENV"] = facts.virtual_env
    return env


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
    strips the codes again wherever its own output is not colored). build() passes False when
    NO_COLOR is set (HostFacts.no_color)."""
    if not colors:
        return {"NO_COLOR": "1"}
    return {"FORCE_COLOR": "1", "CLICOLOR_FORCE": "1", "PY_COLORS": "1"}


def node_name(node: int) -> str:
    """The process and log source of a Socket.IO node: "gunicorn" alone, "gunicorn.N" of several
    (`devstack logs gunicorn` shows them all: a source matches its name's prefix before a dot)."""
    return f"gunicorn.{node}" if node else "gunicorn"


def is_app(name: str) -> bool:
    """The process is one of the app's gunicorns."""
    return name == "gunicorn" or name.startswith("gunicorn.")


def node_control_socket(facts: HostFacts, node: int) -> Path:
    return facts.control_socket if not node else facts.control_socket.with_name(f"node{node}.ctl")


def queue_url(config: Config, facts: HostFacts) -> str:
    """The message queue's URL as the app gets it: devstack's redis-server with its password,
    or queue.url ("" without a queue)."""
    return queue_url_with(config, facts.queue_secret)


def queue_url_with(config: Config, secret: str) -> str:
    """queue_url from the password alone (doctor reads it from the state dir)."""
    if config.queue.started and secret:
        return f"redis://:{secret}@127.0.0.1:{config.queue_port}/0"
    return config.queue_url


def queue_env(config: Config, facts: HostFacts) -> dict[str, str]:
    """The message queue's URL under the configured name (nothing without a queue)."""
    return {config.queue.env: queue_url(config, facts)} if config.queue.enabled else {}


def redis_conf(config: Config, facts: HostFacts) -> str:
    """redis-server's config, written 0600 into the state dir (the password never in argv, where
    every user's `ps` would show it): loopback, protected mode, no persistence, log to stdout."""
    folder = str(facts.state_dir).replace("\\", "\\\\").replace('"', '\\"')
    return (
        "# Written by devstack for the message queue of app.nodes > 1; rewritten by every `up`.\n"
        "bind 127.0.0.1\n"
        f"port {config.queue_port}\n"
        "protected-mode yes\n"
        f"requirepass {facts.queue_secret}\n"
        'save ""\n'
        "appendonly no\n"
        f'dir "{folder}"\n'
        "daemonize no\n"
        'logfile ""\n'
    )


def gunicorn_spec(
    config: Config, facts: HostFacts, engine: str, colors: bool = True, node: int = 0
) -> ProcessSpec:
    """gunicorn, one worker. node 0: the one app process; node N (app.nodes > 1): the Nth of
    several, on app_port + N - 1, each its own supervised child and log source."""
    app_dir = facts.app_dir
    port = config.server.app_port + max(node - 1, 0)
    argv = [
        facts.app_python.path,
        "-m",
        "gunicorn",
        "--config",
        GUNICORN_CONF,  # the same file a gated head start was given: compared there
        "--chdir",
        str(app_dir),
        "--bind",
        f"127.0.0.1:{port}",
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
    version = facts.app_python.gunicorn
    if version is not None and version >= (25, 1):
        # Otherwise gunicorn writes a control socket into $HOME, shared by every stack.
        argv += ["--control-socket", str(node_control_socket(facts, node))]
    if engine in ("inotify", "poll"):
        argv += ["--reload", "--reload-engine", engine]
        for pattern in config.app.reload_extra:
            argv += ["--reload-extra-file", str(app_dir / pattern)]
    if node:
        argv += ["--name", node_name(node)]  # the node in `ps` (with setproctitle) and its logs
    argv.append(config.app.wsgi)
    # .flaskenv/.env first: devstack's own variables and [app.env] are set over them.
    env = {**facts.dotenv, **child_env(config, colors), **queue_env(config, facts)}
    env["DEVSTACK_WORKER"] = config.app.worker
    if node:
        env["DEVSTACK_NODE"] = str(node)
    env["GUNICORN_CMD_ARGS"] = ""  # a stray shell setting must not change the dev server
    if config.server.live_reload:  # gunicorn_conf.py's post_worker_init says "new code serves" here
        env["DEVSTACK_LIVE_NOTIFY"] = str(facts.notify_socket)
    # SIGQUIT is gunicorn's quick shutdown: TERM is graceful, and a gthread worker notices it
    # only at its next 1 s poll (down took 0.6 s for gunicorn alone). A dev server's in-flight
    # request may be cut short; nothing else is lost.
    return ProcessSpec(
        name=node_name(node),
        argv=argv,
        cwd=app_dir,
        env=env,
        restart="app",
        stop_signal="SIGQUIT",
        own_deathsig=True,
    )


def redis_spec(config: Config, facts: HostFacts) -> ProcessSpec:
    """The message queue: redis-server on loopback with a password, no persistence (no dump.rdb,
    no AOF), its output the "redis" log source (redis_conf, written by the backend's prepare).
    Stopped by TERM, which it answers at once without a save."""
    return ProcessSpec(
        name="redis",
        argv=[facts.redis, str(facts.state_dir / REDIS_CONF)],
        cwd=facts.state_dir,
        env={},
        restart="always",
    )


def nginx_spec(facts: HostFacts) -> ProcessSpec:
    state = facts.state_dir
    return ProcessSpec(
        name="nginx",
        argv=[facts.nginx, "-p", str(state), "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"],
        cwd=state,
        env={},
        stdout_source="nginx.access",
        stderr_source="nginx.error",
        restart="always",
    )


@dataclass(frozen=True)
class PortCheck:
    """A port a re-plan needs free before it is applied."""

    key: str  # as devstack.toml names it: server.listen, server.app_port
    host: str
    port: int


@dataclass(frozen=True)
class PlanChanges:
    """What an edit of devstack.toml asks of a running stack (reconfigure applies it)."""

    # New or changed specs other than nginx, in the new plan's order (the app first, so nginx
    # reloads onto a listening gunicorn); the supervisor's replace() starts a new one.
    restart: tuple[ProcessSpec, ...] = ()
    remove: tuple[str, ...] = ()  # processes the new plan no longer has
    reload_nginx: bool = False  # nginx.conf changed: test it, write it, HUP nginx
    ports: tuple[PortCheck, ...] = ()  # moved to a port the stack does not hold yet: must be free
    later: tuple[str, ...] = ()  # settings a running stack cannot take over: the next `up` does
    warnings: tuple[str, ...] = ()  # the new plan's warnings not said before

    @property
    def applied(self) -> list[str]:
        """What applying does, as reconfigure says it."""
        return (
            [f"{spec.name} restarted" for spec in self.restart]
            + [f"{name} stopped" for name in self.remove]
            + (["nginx reloaded"] if self.reload_nginx else [])
        )


def diff(old_config: Config, old_plan: Plan, new_config: Config, new_plan: Plan) -> PlanChanges:
    """The decision half of reconfigure: what differs between the running plan and the new one."""
    if (old_config.app.nodes, old_config.queue) != (new_config.app.nodes, new_config.queue):
        # Nodes, their ports and the queue move together (nginx's upstreams, the app's env):
        # applied by the next `up`, never half-way into a running stack.
        return PlanChanges(
            later=("app.nodes and [queue]",),
            warnings=tuple(w for w in new_plan.warnings if w not in old_plan.warnings),
        )
    old_specs = {spec.name: spec for spec in old_plan.processes}
    new_names = {spec.name for spec in new_plan.processes}
    return PlanChanges(
        restart=tuple(
            spec for spec in new_plan.processes if spec.name != "nginx" and old_specs.get(spec.name) != spec
        ),
        remove=tuple(name for name in old_specs if name not in new_names),
        reload_nginx=new_plan.nginx_conf != old_plan.nginx_conf,
        ports=_moved_ports(old_config, new_config),
        later=tuple(_needs_restart(old_config, new_config, old_plan, new_plan)),
        warnings=tuple(w for w in new_plan.warnings if w not in old_plan.warnings),
    )


def _moved_ports(old: Config, new: Config) -> tuple[PortCheck, ...]:
    old_server, new_server = old.server, new.server
    wanted = []
    if (new_server.listen_host, new_server.listen_port) != (old_server.listen_host, old_server.listen_port):
        wanted.append(PortCheck("server.listen", new_server.listen_host, new_server.listen_port))
    if new_server.app_port != old_server.app_port:
        wanted.append(PortCheck("server.app_port", "127.0.0.1", new_server.app_port))
    ours = (old_server.listen_port, old_server.app_port)  # held by us: nginx rebinds on HUP
    return tuple(check for check in wanted if check.port not in ours)


def _needs_restart(old: Config, new: Config, old_plan: Plan, new_plan: Plan) -> list[str]:
    """Settings a running stack cannot take over (the watchers and log files are set up once)."""
    later = []
    if (old_plan.facts.app_dir, old.app.reload_extra, old_plan.reload_engine) != (
        new_plan.facts.app_dir,
        new.app.reload_extra,
        new_plan.reload_engine,
    ):
        later.append("the app watcher settings (app.dir, app.reload, app.reload_engine, app.reload_extra)")
    if (old_plan.facts.static_dir, old.static.polling, old_plan.facts.has_static) != (
        new_plan.facts.static_dir,
        new.static.polling,
        new_plan.facts.has_static,
    ):
        later.append("the static watcher settings (static.dir, static.polling)")
    if old_plan.facts.extra_static != new_plan.facts.extra_static:
        later.append("the static watchers of [[static.extra]]")
    if old.logs != new.logs:
        later.append("[logs]")
    if old.server.live_reload != new.server.live_reload:
        later.append("server.live_reload")
    return later
