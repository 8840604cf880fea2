"""devstack.toml (or [tool.devstack] in pyproject.toml) -> a typed, validated Config.

Pure: reads the one file and stats paths; never imports the app or opens a socket. Every problem
is a ConfigError naming the file, the key and the fix.
"""

from __future__ import annotations

import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, in a VM guest: the agent ships tomli for it
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devstack.errors import ConfigError, DevstackError
from devstack.system import trust

CONFIG_NAME = "devstack.toml"
WORKERS = ("gthread", "gevent", "eventlet")
RELOAD_ENGINES = ("devstack", "inotify", "poll", "off")
POLLING = ("auto", "always", "never")
SYNC_TYPES = ("rsync", "virtualbox", "nfs")
PROVIDERS = ("libvirt", "virtualbox")
# "auto": the project's own Vagrantfile when it has one, else devstack's generated one.
VAGRANTFILE_MODES = ("auto", "own", "generated")
LIBVIRT_DRIVERS = ("qemu", "kvm")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ATTR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\(.*\))?$")
# A static URL prefix reaches nginx.conf as a `location`: only plain path segments, nothing
# nginx could read as syntax (; { } " $ space) or a regex, no "." or ".." segments.
_URL_PATH_RE = re.compile(r"^/(?:[A-Za-z0-9_~@+-][A-Za-z0-9._~@+-]*/)*$")
_PROC_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")  # fullmatch: "css\n" is not a name
# A name nginx answers as server_name (server.hosts): a DNS name, an IPv4 address or [IPv6].
_HOST_RE = re.compile(
    r"(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\]"
)
_ENV_NAME_RE = re.compile(r"[^=\x00]+")
# Limits of what a config may hold. The kernel refuses one "NAME=value" string over 128 KiB
# (MAX_ARG_STRLEN) with E2BIG at exec: gunicorn's next restart then fails ("Argument list too
# long") while the first start worked. Refused at load time instead, well below the limit.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 16  # tables and arrays nested in one another; the schema needs 3
ENV_VALUE_MAX = 64 * 1024
ENV_TOTAL_MAX = 1024 * 1024  # all of [app.env] + .env together (argv + environ share ~2 MiB)
# Files whose presence in a static folder means it holds the project, not just its assets.
PROJECT_MARKERS = (CONFIG_NAME, ".env", ".devstack", ".git")
# Names devstack itself uses for its own processes and log sources.
RESERVED_NAMES = ("gunicorn", "nginx", "nginx.access", "nginx.error", "watcher", "devstack")


@dataclass(frozen=True)
class AppConfig:
    """[app]: the WSGI app, its folder, worker and reload settings."""

    wsgi: str = "app:app"
    dir: Path = Path(".")
    worker: str = "gthread"
    threads: int = 16
    reload: bool = True
    reload_engine: str = "devstack"
    reload_extra: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    python: str = ""  # the app's interpreter; "" = find it (project/apppython.py)
    # Socket.IO nodes: 1 is one gunicorn; N > 1 is N single-worker gunicorns on consecutive app
    # ports behind nginx (sticky by a cookie nginx sets) and a message queue between them.
    nodes: int = 1

    @property
    def module(self) -> str:
        return self.wsgi.split(":", 1)[0]


@dataclass(frozen=True)
class StaticRoute:
    """One more static folder Flask serves (a blueprint's): [[static.extra]] url + dir."""

    url: str  # "/chat/static/": always with both slashes
    dir: Path  # relative to app.dir (as written)


@dataclass(frozen=True)
class StaticConfig:
    """[static]: the folder nginx serves and its URL prefix ("/": the site root, files that
    exist are nginx's and every other path the app's), and the blueprints' folders."""

    dir: Path = Path("static")
    url: str = "/static/"
    polling: str = "auto"
    explicit: bool = False  # dir was written in the file: a missing folder is then an error
    extra: tuple[StaticRoute, ...] = ()

    @property
    def at_root(self) -> bool:
        return self.url == "/"


@dataclass(frozen=True)
class ServerConfig:
    """[server]: the public address, the app port and nginx's settings."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 5000
    app_port: int = 5001
    autoindex: bool = False
    sendfile: str = "auto"  # auto: off on shared/network filesystems
    proxy_read_timeout: int = 300
    live_reload: bool = True  # inject the live-reload client into HTML pages (devstack/live/)
    hosts: tuple[str, ...] = ()  # more names nginx answers (a LAN name): server_name

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


@dataclass(frozen=True)
class LogsConfig:
    """[logs]: rotation of the log store."""

    max_bytes: int = 10 * 1024 * 1024
    backups: int = 3


@dataclass(frozen=True)
class VMConfig:
    """[vm]: the Vagrant machine of `up --vm`."""

    box: str = "devstack-test"
    provider: str = "libvirt"
    driver: str = "qemu"
    cpus: int = 1
    memory: int = 1024
    sync: str = "rsync"
    host_port: int = 8001
    guest_path: str = "/vagrant"
    boot_timeout: int = 300
    vagrantfile: str = "auto"


@dataclass(frozen=True)
class DoctorConfig:
    """[doctor]: checks the project turns off."""

    ignore: tuple[str, ...] = ()  # check IDs (or globs) `devstack doctor` does not run


@dataclass(frozen=True)
class QueueConfig:
    """[queue]: the message queue the Socket.IO nodes relay emits through (Redis).

    Used when app.nodes > 1 or the table is written. `url` names a Redis the user already runs
    (loopback only; devstack then starts none); otherwise devstack runs redis-server on
    127.0.0.1:port, without persistence."""

    enabled: bool = False
    env: str = "REDIS_URL"  # the variable the app and the extra processes read the URL from
    url: str = ""  # an external Redis: redis://127.0.0.1:6379/0
    port: int = 0  # devstack's redis-server; 0 = the port after the last node's

    @property
    def started(self) -> bool:
        """devstack runs redis-server itself."""
        return self.enabled and not self.url


@dataclass(frozen=True)
class Config:
    """The project's settings (devstack.toml or pyproject.toml), validated; folders resolve from root."""

    path: Path  # the file the config came from (devstack.toml or pyproject.toml)
    root: Path  # the project root: the folder of that file
    app: AppConfig = field(default_factory=AppConfig)
    static: StaticConfig = field(default_factory=StaticConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    vm: VMConfig = field(default_factory=VMConfig)
    processes: dict[str, str] = field(default_factory=dict)
    doctor: DoctorConfig = field(default_factory=DoctorConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    # Where the state lives instead of <root>/.devstack: the VM guest keeps it outside the share.
    state_root: Path | None = None
    # The file's bytes as load() read them: the config watcher's baseline, so that a save made
    # while `up` starts (after this read, before the watcher) is still applied.
    source: bytes = field(default=b"", compare=False, repr=False)

    @property
    def app_dir(self) -> Path:
        return (self.root / self.app.dir).resolve()

    @property
    def static_dir(self) -> Path:
        return (self.app_dir / self.static.dir).resolve()

    @property
    def has_static(self) -> bool:
        """False for an app without a static folder: nginx proxies every path to gunicorn."""
        return self.static_dir.is_dir()

    @property
    def static_routes(self) -> list[tuple[str, Path]]:
        """(URL prefix, absolute folder) of every static folder nginx serves: the main one
        (when it exists), then [[static.extra]]."""
        routes = [(self.static.url, self.static_dir)] if self.has_static else []
        routes += [(r.url, (self.app_dir / r.dir).resolve()) for r in self.static.extra]
        return routes

    @property
    def state_dir(self) -> Path:
        return self.state_root or self.root / ".devstack"

    @property
    def app_ports(self) -> list[int]:
        """One app port per node: app_port, app_port + 1, ..."""
        return [self.server.app_port + index for index in range(self.app.nodes)]

    @property
    def queue_port(self) -> int:
        return self.queue.port or self.server.app_port + self.app.nodes

    @property
    def queue_url(self) -> str:
        """The message queue's URL as the app reads it ("" without a queue)."""
        if not self.queue.enabled:
            return ""
        return self.queue.url or f"redis://127.0.0.1:{self.queue_port}/0"

    @property
    def public_url(self) -> str:
        host = self.server.listen_host
        if host in ("0.0.0.0", "::", "*"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server.listen_port}"


def find_config(start: Path) -> Path:
    """The nearest devstack.toml, or pyproject.toml with [tool.devstack], from start upwards."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_tool_section(pyproject):
            return pyproject
    raise ConfigError(
        str(start / CONFIG_NAME),
        "",
        "no devstack.toml here or in any parent folder",
        "run `devstack init` in your project, or pass --config PATH",
    )


def _has_tool_section(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))  # pragma: no mutate ("UTF-8": same)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return False
    return isinstance(data.get("tool"), dict) and "devstack" in data["tool"]


def load(path: Path) -> Config:
    """Read and validate one config file (only one this user or root owns: system/trust.py)."""
    shown = _shown(path)
    untrusted = trust.problem(str(path))
    if untrusted is not None:
        raise DevstackError(trust.message(str(path), untrusted))
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                shown, "", f"larger than {MAX_CONFIG_BYTES // 1024} KiB", "a config is a few lines: trim it"
            )
        raw = path.read_bytes()
        text = raw.decode("utf-8")  # pragma: no mutate ("UTF-8" is the same codec)
    except FileNotFoundError:
        raise ConfigError(shown, "", "file not found", "create it with `devstack init`") from None
    except UnicodeDecodeError:
        raise ConfigError(shown, "", "not valid UTF-8", "save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(shown, "", f"cannot read: {exc.strerror}", "check its permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, "", f"not valid TOML ({exc})", "fix the syntax") from None
    except RecursionError:  # arrays or inline tables nested hundreds deep
        raise ConfigError(
            shown, "", f"nested deeper than {MAX_DEPTH} levels", "flatten the nested arrays/tables"
        ) from None
    _check_values(data, shown)
    prefix = ""
    if path.name == "pyproject.toml":
        tool = data.get("tool")
        section = tool.get("devstack") if isinstance(tool, dict) else None
        if not isinstance(section, dict):
            raise ConfigError(shown, "[tool.devstack]", "section missing", "add a [tool.devstack] table")
        data, prefix = section, "tool.devstack."
    return replace(parse(data, path.resolve(), shown, prefix), source=raw)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _check_values(data: dict[str, Any], shown: str) -> None:
    """Before any key is read: nothing nested too deep, no NUL byte in any key or string (a NUL
    cannot pass to a process, a path or nginx.conf). Iterative: a deep document cannot recurse."""
    todo: list[tuple[str, Any, int]] = [("", data, 0)]
    while todo:
        key, value, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(shown, key, f"nested deeper than {MAX_DEPTH} levels", "flatten it")
        items: list[tuple[str, Any]] = []
        if isinstance(value, dict):
            for name, inner in value.items():
                where = f"{key}.{name}" if key else name
                if "\x00" in name:
                    raise ConfigError(shown, where, "the key holds a NUL byte", "remove it")
                items.append((where, inner))
        elif isinstance(value, list):
            items = [(f"{key}[{index}]", inner) for index, inner in enumerate(value)]
        elif isinstance(value, str) and "\x00" in value:
            raise ConfigError(shown, key, "the value holds a NUL byte", "remove it")
        todo.extend((where, inner, depth + 1) for where, inner in items)


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


class _Reader:
    """Reads one table, remembering which keys were used so unknown ones can be named."""

    data: dict[str, Any]
    used: set[str]

    def __init__(self, data: Any, shown: str, table: str) -> None:
        self.shown, self.table = shown, table
        if not isinstance(data, dict):
            raise ConfigError(shown, f"[{table}]", "must be a table", f"write it as [{table}]")
        self.data = data
        self.used = set()

    def key(self, name: str) -> str:
        return f"{self.table}.{name}" if self.table else name

    def fail(self, name: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.shown, self.key(name), problem, fix)

    def get(self, name: str, kind: type, default: Any) -> Any:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        # bool is an int in Python; a config author means them as different things.
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.fail(
                name,
                f"expected {_kind_name(kind)}, got {_kind_name(type(value))} {_short(value)}",
                f"write {_kind_name(kind)}, e.g. {self.key(name)} = {_example(kind, default)}",
            )
        return value

    def path(self, name: str, default: str) -> str:
        """A folder or file name: no control characters (a newline would reach nginx.conf)."""
        value: str = self.get(name, str, default)
        if _has_control(value):
            raise self.fail(name, f"{_short(value)} holds a control character", "rename the folder")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value: str = self.get(name, str, default)
        if value not in choices:
            raise self.fail(
                name,
                f"{_short(value)} is not one of {', '.join(choices)}",
                f"use one of: {', '.join(choices)}",
            )
        return value

    def int_range(self, name: str, default: int, low: int, high: int) -> int:
        value: int = self.get(name, int, default)
        if not low <= value <= high:
            raise self.fail(name, f"{value} is out of range", f"use a number from {low} to {high}")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, [])
        if not all(isinstance(item, str) for item in value):
            raise self.fail(name, "every item must be a string", f'write e.g. {name} = ["templates/*.html"]')
        return tuple(value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.fail(unknown[0], "unknown key", f"remove it or use one of: {known}")


def _short(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it, cut short: a 10 kB string does not belong in one error line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " …" + text[-3:]


def _kind_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        float: "a number",
    }.get(kind, kind.__name__)


def _example(kind: type, default: Any) -> str:
    if kind is bool:
        return "true"
    if kind is str:
        return f'"{default}"'
    if kind is list:
        return "[]"
    return repr(default)


TOP_TABLES = ("app", "static", "server", "logs", "vm", "processes", "doctor", "queue")
MAX_NODES = 16
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_REDIS_URL_RE = re.compile(
    r"redis://(?::[^@/\s]*@)?(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})(?:/(\d{1,2}))?"
)


def parse(data: dict[str, Any], path: Path, shown: str | None = None, prefix: str = "") -> Config:
    shown = shown or str(path)
    root = path.parent
    top = _Reader(data, shown, prefix.removesuffix("."))
    for name in data:
        if name not in TOP_TABLES:
            raise top.fail(name, "unknown section", f"use one of: {', '.join(TOP_TABLES)}")

    a = _Reader(data.get("app", {}), shown, prefix + "app")
    wsgi = a.get("wsgi", str, "app:app")
    module, _, attr = wsgi.partition(":")
    if not _MODULE_RE.fullmatch(module) or (attr and not _ATTR_RE.fullmatch(attr)):
        raise a.fail("wsgi", f"{_short(wsgi)} is not module:attr", 'write e.g. wsgi = "app:app"')
    app_dir = Path(a.path("dir", "."))
    worker = a.choice("worker", WORKERS, "gthread")
    threads = a.int_range("threads", 16, 1, 1000)
    reload = a.get("reload", bool, True)
    engine = a.choice("reload_engine", RELOAD_ENGINES, "devstack")
    extra = a.str_list("reload_extra")
    python = a.path("python", "")
    nodes = a.int_range("nodes", 1, 1, MAX_NODES)
    env_table = a.get("env", dict, {})
    if not all(isinstance(v, str) for v in env_table.values()):
        raise a.fail("env", "every value must be a string", 'quote the values, e.g. DEBUG = "1"')
    check_env(env_table, shown, prefix + "app.env")
    a.finish()

    s = _Reader(data.get("static", {}), shown, prefix + "static")
    explicit_static = "dir" in s.data
    static_dir = Path(s.path("dir", "static"))
    url = _url_path(s, "url", s.get("url", str, "/static/"), root_ok=True)
    polling = s.choice("polling", POLLING, "auto")
    static_extra = _static_extra(s, s.get("extra", list, []), prefix, url)
    s.finish()

    v = _Reader(data.get("server", {}), shown, prefix + "server")
    listen = v.get("listen", str, "127.0.0.1:5000")
    host, port = _parse_listen(listen, v)
    app_port = v.int_range("app_port", 5001, 1, 65535)
    if app_port == port:
        raise v.fail(
            "app_port",
            f"{app_port} is also the port in server.listen",
            "give gunicorn and nginx different ports",
        )
    autoindex = v.get("autoindex", bool, False)
    sendfile = v.choice("sendfile", ("auto", "on", "off"), "auto")
    read_timeout = v.int_range("proxy_read_timeout", 300, 1, 86400)
    live_reload = v.get("live_reload", bool, True)
    hosts = v.str_list("hosts")
    for index, name in enumerate(hosts):
        if not is_host_name(name):
            raise v.fail(
                f"hosts[{index}]",
                f"{_short(name)} is not a host name",
                'write a name or address the stack is reached by, e.g. hosts = ["devbox.lan"]',
            )
    v.finish()

    lg = _Reader(data.get("logs", {}), shown, prefix + "logs")
    max_bytes = lg.int_range("max_bytes", 10 * 1024 * 1024, 4096, 2**40)
    backups = lg.int_range("backups", 3, 0, 100)
    lg.finish()

    m = _Reader(data.get("vm", {}), shown, prefix + "vm")
    vm = VMConfig(
        box=m.path("box", VMConfig.box),
        provider=m.choice("provider", PROVIDERS, VMConfig.provider),
        driver=m.choice("driver", LIBVIRT_DRIVERS, VMConfig.driver),
        cpus=m.int_range("cpus", VMConfig.cpus, 1, 64),
        memory=m.int_range("memory", VMConfig.memory, 256, 65536),
        sync=m.choice("sync", SYNC_TYPES, VMConfig.sync),
        host_port=m.int_range("host_port", VMConfig.host_port, 1, 65535),
        guest_path=m.path("guest_path", VMConfig.guest_path),
        boot_timeout=m.int_range("boot_timeout", VMConfig.boot_timeout, 10, 3600),
        vagrantfile=m.choice("vagrantfile", VAGRANTFILE_MODES, VMConfig.vagrantfile),
    )
    m.finish()
    if not vm.guest_path.startswith("/"):
        raise m.fail("guest_path", f"{vm.guest_path!r} is not absolute", 'write e.g. guest_path = "/vagrant"')

    p = _Reader(data.get("processes", {}), shown, prefix + "processes")
    processes: dict[str, str] = {}
    for name in list(p.data):
        command = p.get(name, str, "")  # pragma: no mutate (name is in the table: no default read)
        if not _PROC_NAME_RE.fullmatch(name) or name in RESERVED_NAMES or name.startswith("gunicorn."):
            raise p.fail(
                name,
                "not a usable process name",
                "use letters, digits, - and _ (not gunicorn, nginx, watcher)",
            )
        if not command.strip():
            raise p.fail(name, "empty command", 'write e.g. css = "npm run watch:css"')
        processes[name] = command
    p.finish()

    queue = _queue(data, shown, prefix, nodes, app_port, port)
    if queue.started and "redis" in processes:
        raise p.fail(
            "redis",
            "devstack runs the message queue's redis-server itself (app.nodes > 1 or [queue])",
            'remove it, or point queue.url at it (e.g. url = "redis://127.0.0.1:6379/0")',
        )

    # [doctor]: the IDs are validated by `devstack doctor`, which knows them.
    dr = _Reader(data.get("doctor", {}), shown, prefix + "doctor")
    doctor = DoctorConfig(ignore=dr.str_list("ignore"))
    dr.finish()

    config = Config(
        path=path,
        root=root,
        app=AppConfig(
            wsgi=wsgi if attr else f"{module}:app",
            dir=app_dir,
            worker=worker,
            threads=threads,
            reload=reload,
            reload_engine=engine,
            reload_extra=extra,
            env=dict(env_table),
            python=python,
            nodes=nodes,
        ),
        static=StaticConfig(
            dir=static_dir, url=url, polling=polling, explicit=explicit_static, extra=static_extra
        ),
        server=ServerConfig(
            listen_host=host,
            listen_port=port,
            app_port=app_port,
            autoindex=autoindex,
            sendfile=sendfile,
            proxy_read_timeout=read_timeout,
            live_reload=live_reload,
            hosts=hosts,
        ),
        logs=LogsConfig(max_bytes=max_bytes, backups=backups),
        vm=vm,
        processes=processes,
        doctor=doctor,
        queue=queue,
    )
    _check_paths(config, shown, prefix)
    return config


def _queue(
    data: dict[str, Any], shown: str, prefix: str, nodes: int, app_port: int, listen: int
) -> QueueConfig:
    """[queue]: used when app.nodes > 1 or when the table is written."""
    q = _Reader(data.get("queue", {}), shown, prefix + "queue")
    env = q.get("env", str, "REDIS_URL")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise q.fail("env", f"{_short(env)} is not a variable name", 'write e.g. env = "REDIS_URL"')
    url = q.get("url", str, "")
    if url:
        match = _REDIS_URL_RE.fullmatch(url)
        if match is None:
            raise q.fail(
                "url",
                f"{_short(url)} is not a loopback Redis URL (the stack stays on this machine)",
                'write e.g. url = "redis://127.0.0.1:6379/0", or remove it to have devstack run one',
            )
        if not 1 <= int(match.group(2)) <= 65535:
            raise q.fail("url", f"port {match.group(2)} is out of range", "use a port from 1 to 65535")
    port = q.int_range("port", 0, 0, 65535)
    q.finish()
    enabled = nodes > 1 or "queue" in data
    if port and url:
        raise q.fail(
            "port", "queue.url names a Redis devstack does not start", "remove queue.port or queue.url"
        )
    chosen = port or app_port + nodes
    nodes_ports = range(app_port, app_port + nodes)
    if listen in nodes_ports:
        raise ConfigError(
            shown,
            prefix + "server.listen",
            f"port {listen} is one of the app ports {app_port}-{app_port + nodes - 1} (app.nodes = {nodes})",
            "give nginx a port outside server.app_port .. server.app_port + app.nodes - 1",
        )
    if enabled and not url and (chosen in nodes_ports or chosen == listen or chosen > 65535):
        raise q.fail(
            "port",
            f"{chosen} is taken by the stack itself (nginx or a node) or out of range",
            "set queue.port to a free port outside the app ports",
        )
    return QueueConfig(enabled=enabled, env=env, url=url, port=port)


def _url_path(reader: _Reader, name: str, url: str, root_ok: bool) -> str:
    """A static URL prefix, normalized to "/x/y/" ("/": the site root, where allowed)."""
    fix = 'write e.g. url = "/static/" (letters, digits, . _ ~ @ + - between slashes)'
    # Trailing slash always: the alias traversal rule depends on it.
    url = url.rstrip("/") + "/"  # "", "/" and "//" are all the site root (Flask: static_url_path="")
    if not is_url_path(url):
        raise reader.fail(name, f"{_short(url)} is not a URL path", fix)
    if url == "/" and not root_ok:
        raise reader.fail(
            name, "only static.url may be the site root", 'use a prefix such as "/chat/static/"'
        )
    return url


def _static_extra(reader: _Reader, items: list[Any], prefix: str, main_url: str) -> tuple[StaticRoute, ...]:
    """[[static.extra]]: url + dir of each blueprint's static folder, each URL used once."""
    routes: list[StaticRoute] = []
    seen = {main_url}
    for index, item in enumerate(items):
        table = f"{prefix}static.extra[{index}]"
        r = _Reader(item, reader.shown, table)
        for key in ("url", "dir"):
            if key not in r.data:
                raise r.fail(key, "missing", 'write both, e.g. url = "/chat/static/" and dir = "chat/static"')
        # both keys are there (checked above): the defaults are never read
        written = r.get("url", str, "")  # pragma: no mutate
        url = _url_path(r, "url", written, root_ok=False)
        folder = r.path("dir", "")  # pragma: no mutate
        r.finish()
        if url in seen:
            raise r.fail("url", f"{url} is served twice", "give each static folder its own URL")
        seen.add(url)
        routes.append(StaticRoute(url, Path(folder)))
    return tuple(routes)


def is_url_path(url: str) -> bool:
    """A static URL prefix as nginx.conf may name it: "/" + plain segments + "/"."""
    return bool(_URL_PATH_RE.fullmatch(url))  # each segment non-empty: no "//"


def is_host_name(name: str) -> bool:
    return bool(_HOST_RE.fullmatch(name)) and len(name) <= 253


def check_env(values: dict[str, str], shown: str, table: str) -> None:
    """Variables a child's environment can hold: a name without "=", a value under
    ENV_VALUE_MAX, all of them under ENV_TOTAL_MAX (NUL bytes were refused already)."""
    total = 0
    for name, value in values.items():
        key = f"{table}.{name}" if table else name
        if not _ENV_NAME_RE.fullmatch(name):
            raise ConfigError(shown, key, "not a usable variable name", "use letters, digits and _")
        if "\x00" in value:
            raise ConfigError(shown, key, "the value holds a NUL byte", "remove it")
        size = len(name.encode()) + len(value.encode(errors="surrogateescape")) + 2
        if size > ENV_VALUE_MAX:
            raise ConfigError(
                shown,
                key,
                f"the value is {size // 1024} KiB, over the {ENV_VALUE_MAX // 1024} KiB a variable may hold "
                "(the kernel refuses the process start)",
                "put the data in a file and pass its path",
            )
        total += size
    if total > ENV_TOTAL_MAX:
        raise ConfigError(
            shown,
            table,
            f"the variables hold {total // 1024} KiB, over {ENV_TOTAL_MAX // 1024} KiB in all",
            "put the data in files and pass their paths",
        )


def _parse_listen(listen: str, reader: _Reader) -> tuple[str, int]:
    fix = 'write host:port, e.g. listen = "127.0.0.1:5000"'
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", listen)
    if not match:
        raise reader.fail("listen", f"{_short(listen)} is not host:port", fix)
    host, port = match.group(1), int(match.group(2))
    if host.startswith("["):
        host = host[1:-1]
    if not 1 <= port <= 65535:
        raise reader.fail("listen", f"port {port} is out of range", "use a port from 1 to 65535")
    return host, port


def _check_static_folder(config: Config, folder: Path, key: str, at_root: bool, shown: str) -> None:
    """A folder nginx serves straight from disk may not expose the project: not /, not the
    project root or a folder above it, nothing holding devstack.toml, .env, .devstack or .git.

    Static at the site root (static.url = "/") may be the project folder itself (Flask's
    static_folder=".", static_url_path=""): nginx then serves from disk only files that are not
    dot files, not in a dot folder and not the project's source or config (nginx.conf.j2 sends
    those paths to the app), so the folder is only refused when it is / or above the project.
    """
    root = config.root.resolve()
    fix = "point it at the folder of your static files (e.g. static), relative to app.dir"
    if _has_control(str(folder)):
        raise ConfigError(shown, key, f"{str(folder)!r} holds a control character", "rename the folder")
    if folder == Path(folder.anchor) or folder in root.parents:
        raise ConfigError(shown, key, f"{folder} is above the project: nginx would serve all of it", fix)
    if at_root:
        return
    if folder == root:
        raise ConfigError(
            shown, key, f"{folder} is the project folder: nginx would serve .env and devstack.toml", fix
        )
    held = [name for name in PROJECT_MARKERS if (folder / name).exists()]
    if held:
        raise ConfigError(shown, key, f"{folder} holds {held[0]}: nginx would serve the project's files", fix)


def _check_paths(config: Config, shown: str, prefix: str) -> None:
    if not config.app_dir.is_dir():
        raise ConfigError(
            shown,
            prefix + "app.dir",
            f"folder {config.app_dir} does not exist",
            "point app.dir at the folder holding your app",
        )
    if config.static.explicit and not config.static_dir.is_dir():
        raise ConfigError(
            shown,
            prefix + "static.dir",
            f"folder {config.static_dir} does not exist",
            "create it, or point static.dir at your static folder (relative to app.dir)",
        )
    if config.has_static:
        _check_static_folder(config, config.static_dir, prefix + "static.dir", config.static.at_root, shown)
    for index, route in enumerate(config.static.extra):
        folder = (config.app_dir / route.dir).resolve()
        if folder.is_dir():
            _check_static_folder(config, folder, f"{prefix}static.extra[{index}].dir", False, shown)
        if not folder.is_dir():
            raise ConfigError(
                shown,
                f"{prefix}static.extra[{index}].dir",
                f"folder {folder} does not exist",
                "point it at the blueprint's static folder (relative to app.dir), or remove the entry",
            )
        if "$" in str(folder):
            raise ConfigError(
                shown,
                f"{prefix}static.extra[{index}].dir",
                f"{folder} holds a $, which nginx reads as a variable",
                "rename the folder, or remove the entry (the app then serves it)",
            )
    module_path = config.app_dir.joinpath(*config.app.module.split("."))
    if not (module_path.with_suffix(".py").is_file() or (module_path / "__init__.py").is_file()):
        raise ConfigError(
            shown,
            prefix + "app.wsgi",
            f"module {config.app.module!r} not found in {config.app_dir} (no "
            f"{module_path.name}.py or {module_path.name}/__init__.py)",
            "set app.wsgi to module:attr of your Flask app, relative to app.dir",
        )
