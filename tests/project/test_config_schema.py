"""The whole devstack.toml schema, key by key: every default, every key read, every integer's
limits at both edges, and every refusal parse() makes as the one line the user reads.

Written against the mutants `make mutation` found surviving in project/config.py: a default, a
limit or a word of a message could change and no test noticed.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from devstack.errors import DevstackError
from devstack.project import config
from tests.support.configfile import load, make_root, refusal, said

pytestmark = pytest.mark.unit

TOP = "app, static, server, logs, vm, processes, doctor, queue"


def tables(cfg: config.Config) -> dict[str, Any]:
    return {
        "app": dataclasses.asdict(cfg.app),
        "static": dataclasses.asdict(cfg.static),
        "server": dataclasses.asdict(cfg.server),
        "logs": dataclasses.asdict(cfg.logs),
        "vm": dataclasses.asdict(cfg.vm),
        "processes": cfg.processes,
        "doctor": dataclasses.asdict(cfg.doctor),
        "queue": dataclasses.asdict(cfg.queue),
    }


def test_every_default_as_documented(here: Path) -> None:
    assert tables(load(here, "")) == {
        "app": {
            "wsgi": "app:app",
            "dir": Path("."),
            "worker": "gthread",
            "threads": 16,
            "reload": True,
            "reload_engine": "devstack",
            "reload_extra": (),
            "env": {},
            "python": "",
            "nodes": 1,
        },
        "static": {
            "dir": Path("static"),
            "url": "/static/",
            "polling": "auto",
            "explicit": False,
            "extra": (),
        },
        "server": {
            "listen_host": "127.0.0.1",
            "listen_port": 5000,
            "app_port": 5001,
            "autoindex": False,
            "sendfile": "auto",
            "proxy_read_timeout": 300,
            "live_reload": True,
            "hosts": (),
        },
        "logs": {"max_bytes": 10 * 1024 * 1024, "backups": 3},
        "vm": {
            "box": "devstack-test",
            "provider": "libvirt",
            "driver": "qemu",
            "cpus": 1,
            "memory": 1024,
            "sync": "rsync",
            "host_port": 8001,
            "guest_path": "/vagrant",
            "boot_timeout": 300,
            "vagrantfile": "auto",
        },
        "processes": {},
        "doctor": {"ignore": ()},
        "queue": {"enabled": False, "env": "REDIS_URL", "url": "", "port": 0},
    }


EVERY_KEY = """
[app]
wsgi = "web"
dir = "src"
worker = "gevent"
threads = 4
reload = false
reload_engine = "poll"
reload_extra = ["templates/*.html"]
python = "venv/bin/python"
nodes = 2
env = { DEBUG = "1" }

[static]
dir = "assets"
url = "/cssX"
polling = "always"

[[static.extra]]
url = "/chat/static"
dir = "chat/static"

[server]
listen = "Localhost:8080"
app_port = 7001
autoindex = true
sendfile = "off"
proxy_read_timeout = 60
live_reload = false
hosts = ["devbox.lan"]

[logs]
max_bytes = 5000
backups = 0

[vm]
box = "debian/bookworm64"
provider = "virtualbox"
driver = "kvm"
cpus = 2
memory = 2048
sync = "nfs"
host_port = 8002
guest_path = "/srv/app"
boot_timeout = 60
vagrantfile = "own"

[processes]
css = "npm run watch:css"

[doctor]
ignore = ["static.sendfile"]

[queue]
env = "my_queue"
port = 7100
"""


def test_every_key_is_read(here: Path) -> None:
    for folder in ("src/assets", "src/chat/static"):
        (here / folder).mkdir(parents=True)
    (here / "src" / "web.py").write_text("app = None\n")
    assert tables(load(here, EVERY_KEY)) == {
        "app": {
            "wsgi": "web:app",  # no attribute: Flask's default name, as gunicorn reads it
            "dir": Path("src"),
            "worker": "gevent",
            "threads": 4,
            "reload": False,
            "reload_engine": "poll",
            "reload_extra": ("templates/*.html",),
            "env": {"DEBUG": "1"},
            "python": "venv/bin/python",
            "nodes": 2,
        },
        "static": {
            "dir": Path("assets"),
            "url": "/cssX/",
            "polling": "always",
            "explicit": True,
            "extra": ({"url": "/chat/static/", "dir": Path("chat/static")},),
        },
        "server": {
            "listen_host": "Localhost",
            "listen_port": 8080,
            "app_port": 7001,
            "autoindex": True,
            "sendfile": "off",
            "proxy_read_timeout": 60,
            "live_reload": False,
            "hosts": ("devbox.lan",),
        },
        "logs": {"max_bytes": 5000, "backups": 0},
        "vm": {
            "box": "debian/bookworm64",
            "provider": "virtualbox",
            "driver": "kvm",
            "cpus": 2,
            "memory": 2048,
            "sync": "nfs",
            "host_port": 8002,
            "guest_path": "/srv/app",
            "boot_timeout": 60,
            "vagrantfile": "own",
        },
        "processes": {"css": "npm run watch:css"},
        "doctor": {"ignore": ("static.sendfile",)},
        "queue": {"enabled": True, "env": "my_queue", "url": "", "port": 7100},
    }


def test_the_same_keys_in_pyproject(here: Path) -> None:
    text = "[project]\nname = 'x'\n" + re.sub(r"^(\[+)", r"\1tool.devstack.", EVERY_KEY, flags=re.M)
    for folder in ("src/assets", "src/chat/static"):
        (here / folder).mkdir(parents=True)
    (here / "src" / "web.py").write_text("app = None\n")
    assert tables(load(here, text, "pyproject.toml")) == tables(load(here, EVERY_KEY))


# (table, key, low, high): every integer devstack.toml holds.
LIMITS = [
    ("app", "threads", 1, 1000),
    ("app", "nodes", 1, 16),
    ("server", "app_port", 1, 65535),
    ("server", "proxy_read_timeout", 1, 86400),
    ("logs", "max_bytes", 4096, 2**40),
    ("logs", "backups", 0, 100),
    ("vm", "cpus", 1, 64),
    ("vm", "memory", 256, 65536),
    ("vm", "host_port", 1, 65535),
    ("vm", "boot_timeout", 10, 3600),
    ("queue", "port", 0, 65535),
]


@pytest.mark.parametrize(("table", "key", "low", "high"), LIMITS, ids=[f"{t}.{k}" for t, k, _, _ in LIMITS])
def test_integer_limits_at_both_edges(here: Path, table: str, key: str, low: int, high: int) -> None:
    for value in (low, high):
        cfg = load(here, f"[{table}]\n{key} = {value}\n")
        assert getattr(getattr(cfg, table), key) == value
    for value in (low - 1, high + 1):
        assert said(here, f"[{table}]\n{key} = {value}\n") == (
            f"devstack.toml: {table}.{key}: {value} is out of range — use a number from {low} to {high}"
        )


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ('[server]\nlisten = "127.0.0.1:1"', ("127.0.0.1", 1)),
        ('[server]\nlisten = "127.0.0.1:65535"', ("127.0.0.1", 65535)),
        ('[server]\nlisten = "[::1]:5000"', ("::1", 5000)),
        ('[server]\nlisten = "[::FFFF:7F00:1]:5000"', ("::FFFF:7F00:1", 5000)),
    ],
)
def test_listen_addresses_taken(here: Path, text: str, accepted: tuple[str, int]) -> None:
    server = load(here, text).server
    assert (server.listen_host, server.listen_port) == accepted


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://localhost:1",
        "redis://[::1]:65535/15",
        "redis://:pw@localhost:6380",
    ],
)
def test_an_external_queue_is_taken(here: Path, url: str) -> None:
    queue = load(here, f'[queue]\nurl = "{url}"\n').queue
    assert (queue.enabled, queue.url, queue.started) == (True, url, False)


@pytest.mark.parametrize(
    ("text", "wsgi"),
    [
        ('[app]\nwsgi = "app"', "app:app"),
        ("[app]\nwsgi = \"app:create_app('redis://x:1')\"", "app:create_app('redis://x:1')"),
        ('[app]\nwsgi = "app:App_2"', "app:App_2"),
    ],
)
def test_wsgi_spellings_taken(here: Path, text: str, wsgi: str) -> None:
    assert load(here, text).app.wsgi == wsgi


def test_the_queue_port_edges(here: Path) -> None:
    # The port after the last node's is the queue's, unless that is nginx's or past 65535.
    assert load(here, "[server]\napp_port = 65534\n[queue]\n").queue_port == 65535
    assert said(here, "[server]\napp_port = 65535\n[queue]\n") == (
        "devstack.toml: queue.port: 65536 is taken by the stack itself (nginx or a node) or out of range "
        "— set queue.port to a free port outside the app ports"
    )
    assert said(here, "[server]\napp_port = 4999\n[queue]\n") == (
        "devstack.toml: queue.port: 5000 is taken by the stack itself (nginx or a node) or out of range "
        "— set queue.port to a free port outside the app ports"
    )
    # An external Redis: no port of the stack's is needed for it.
    assert load(here, '[server]\napp_port = 65535\n[queue]\nurl = "redis://localhost:6379"\n').queue.url
    # Without nodes or a [queue] table there is no queue, whatever the ports.
    assert not load(here, "[server]\napp_port = 65535\n").queue.enabled


WSGI_FIX = 'write e.g. wsgi = "app:app"'
EXTRA_FIX = 'write both, e.g. url = "/chat/static/" and dir = "chat/static"'
URL_FIX = 'write e.g. url = "/static/" (letters, digits, . _ ~ @ + - between slashes)'


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[nope]", f"nope: unknown section — use one of: {TOP}"),
        ('[static]\nurl = "static"', f"static.url: 'static/' is not a URL path — {URL_FIX}"),
        ('[static]\nurl = "/a b/"', f"static.url: '/a b/' is not a URL path — {URL_FIX}"),
        ('[static]\nurl = "/${x}/"', f"static.url: '/${{x}}/' is not a URL path — {URL_FIX}"),
        ('[static]\nurl = "/a/./b/"', f"static.url: '/a/./b/' is not a URL path — {URL_FIX}"),
        ('[static]\nurl = "/a/../b/"', f"static.url: '/a/../b/' is not a URL path — {URL_FIX}"),
        ('[static]\nurl = "//a/"', f"static.url: '//a/' is not a URL path — {URL_FIX}"),
        (
            '[server]\nlisten = "5000"',
            ("server.listen: '5000' is not host:port — write host:port, e.g. listen = \"127.0.0.1:5000\""),
        ),
        (
            "[server]\nthreads = 4",
            (
                "server.threads: unknown key — remove it or use one of: app_port, autoindex, hosts, listen, "
                "live_reload, proxy_read_timeout, sendfile"
            ),
        ),
        (
            '[vm]\nprovider = "docker"',
            ("vm.provider: 'docker' is not one of libvirt, virtualbox — use one of: libvirt, virtualbox"),
        ),
        ('[processes]\ncss = ""', 'processes.css: empty command — write e.g. css = "npm run watch:css"'),
        (
            '[app]\nwsgii = "x"',
            (
                "app.wsgii: unknown key — remove it or use one of: dir, env, nodes, python, reload, "
                "reload_engine, reload_extra, threads, worker, wsgi"
            ),
        ),
        ('[app]\nwsgi = "1app:app"', f"app.wsgi: '1app:app' is not module:attr — {WSGI_FIX}"),
        ('[app]\nwsgi = "app:1app"', f"app.wsgi: 'app:1app' is not module:attr — {WSGI_FIX}"),
        (
            '[app]\nworker = "sync"',
            (
                "app.worker: 'sync' is not one of gthread, gevent, eventlet — use one of: gthread, gevent, "
                "eventlet"
            ),
        ),
        (
            "[app]\nreload_extra = [1]",
            (
                "app.reload_extra: every item must be a string — write e.g. reload_extra = "
                '["templates/*.html"]'
            ),
        ),
        (
            '[app]\npython = "a\\u007fb"',
            "app.python: 'a\\x7fb' holds a control character — rename the folder",
        ),
        (
            "[app.env]\nDEBUG = 1",
            'app.env: every value must be a string — quote the values, e.g. DEBUG = "1"',
        ),
        ('[static]\nurl = "/a;b/"', f"static.url: '/a;b/' is not a URL path — {URL_FIX}"),
        (
            '[server]\nlisten = "127.0.0.1:0"',
            "server.listen: port 0 is out of range — use a port from 1 to 65535",
        ),
        (
            '[server]\nlisten = "127.0.0.1:65536"',
            ("server.listen: port 65536 is out of range — use a port from 1 to 65535"),
        ),
        (
            "[server]\napp_port = 5000",
            (
                "server.app_port: 5000 is also the port in server.listen — give gunicorn and nginx "
                "different ports"
            ),
        ),
        (
            '[server]\nhosts = ["ok.lan", "a b"]',
            (
                "server.hosts[1]: 'a b' is not a host name — write a name or address the stack is reached "
                "by, "
                'e.g. hosts = ["devbox.lan"]'
            ),
        ),
        (
            '[vm]\nguest_path = "vagrant"',
            ("vm.guest_path: 'vagrant' is not absolute — write e.g. guest_path = \"/vagrant\""),
        ),
        (
            '[processes]\nnginx = "x"',
            (
                "processes.nginx: not a usable process name — use letters, digits, - and _ (not gunicorn, "
                "nginx, watcher)"
            ),
        ),
        (
            '[processes]\n"gunicorn.2" = "x"',
            (
                "processes.gunicorn.2: not a usable process name — use letters, digits, - and _ "
                "(not gunicorn, nginx, watcher)"
            ),
        ),
        ('[processes]\ncss = "  "', 'processes.css: empty command — write e.g. css = "npm run watch:css"'),
        (
            '[app]\nnodes = 2\n[processes]\nredis = "redis-server"',
            (
                "processes.redis: devstack runs the message queue's redis-server itself (app.nodes > 1 or "
                "[queue]) "
                '— remove it, or point queue.url at it (e.g. url = "redis://127.0.0.1:6379/0")'
            ),
        ),
        (
            '[queue]\nenv = "1URL"',
            "queue.env: '1URL' is not a variable name — write e.g. env = \"REDIS_URL\"",
        ),
        (
            '[queue]\nurl = "redis://10.0.0.1:6379/0"',
            (
                "queue.url: 'redis://10.0.0.1:6379/0' is not a loopback Redis URL (the stack stays on this "
                "machine) "
                '— write e.g. url = "redis://127.0.0.1:6379/0", or remove it to have devstack run one'
            ),
        ),
        (
            '[queue]\nurl = "redis://127.0.0.1:0/0"',
            "queue.url: port 0 is out of range — use a port from 1 to 65535",
        ),
        (
            '[queue]\nurl = "redis://127.0.0.1:65536"',
            ("queue.url: port 65536 is out of range — use a port from 1 to 65535"),
        ),
        (
            '[queue]\nurl = "redis://127.0.0.1:6379/0"\nport = 7000',
            ("queue.port: queue.url names a Redis devstack does not start — remove queue.port or queue.url"),
        ),
        (
            '[app]\nnodes = 3\n[server]\nlisten = "127.0.0.1:5003"',
            (
                "server.listen: port 5003 is one of the app ports 5001-5003 (app.nodes = 3) — give nginx a "
                "port "
                "outside server.app_port .. server.app_port + app.nodes - 1"
            ),
        ),
        (
            "[app]\nnodes = 2\n[queue]\nport = 5002",
            (
                "queue.port: 5002 is taken by the stack itself (nginx or a node) or out of range — set "
                "queue.port "
                "to a free port outside the app ports"
            ),
        ),
        ('[[static.extra]]\nurl = "/c/"', f"static.extra[0].dir: missing — {EXTRA_FIX}"),
        ('[[static.extra]]\ndir = "chat/static"', f"static.extra[0].url: missing — {EXTRA_FIX}"),
        (
            '[[static.extra]]\nurl = "/"\ndir = "chat/static"',
            (
                "static.extra[0].url: only static.url may be the site root — use a prefix such as "
                '"/chat/static/"'
            ),
        ),
        (
            '[[static.extra]]\nurl = "/static"\ndir = "chat/static"',
            ("static.extra[0].url: /static/ is served twice — give each static folder its own URL"),
        ),
        (
            '[[static.extra]]\nurl = "/c;x/"\ndir = "chat/static"',
            f"static.extra[0].url: '/c;x/' is not a URL path — {URL_FIX}",
        ),
        (
            '[[static.extra]]\nurl = "/c/"\ndir = "chat/static"\nx = 1',
            ("static.extra[0].x: unknown key — remove it or use one of: dir, url"),
        ),
        ('[static]\nextra = ["/c/"]', "[static.extra[0]]: must be a table — write it as [static.extra[0]]"),
        (
            '[[static.extra]]\nurl = "/a/"\ndir = "chat/static"\n[[static.extra]]\nurl = "/a"\ndir = '
            '"chat/static"',
            "static.extra[1].url: /a/ is served twice — give each static folder its own URL",
        ),
        (
            '[[static.extra]]\nurl = "/c/"\ndir = "chat/st\\u0001"',
            ("static.extra[0].dir: 'chat/st\\x01' holds a control character — rename the folder"),
        ),
        (
            '[[static.extra]]\nurl = "/c/"\ndir = "held"',
            (
                "static.extra[0].dir: ROOT/held holds .git: nginx would serve the project's files — point "
                "it at the "
                "folder of your static files (e.g. static), relative to app.dir"
            ),
        ),
        (
            "[doctor]\nignore = [1]",
            'doctor.ignore: every item must be a string — write e.g. ignore = ["templates/*.html"]',
        ),
        ("[doctor]\nskip = []", "doctor.skip: unknown key — remove it or use one of: ignore"),
        ("[logs]\nmax = 1", "logs.max: unknown key — remove it or use one of: backups, max_bytes"),
    ],
)
def test_every_refusal_is_one_whole_line(here: Path, text: str, line: str) -> None:
    (here / "chat" / "static").mkdir(parents=True)
    (here / "held" / ".git").mkdir(parents=True)
    assert said(here, text + "\n") == f"devstack.toml: {line}"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[tool.devstack.nope]", f"tool.devstack.nope: unknown section — use one of: {TOP}"),
        (
            "[tool.devstack.logs]\nmax = 1",
            ("tool.devstack.logs.max: unknown key — remove it or use one of: backups, max_bytes"),
        ),
        (
            "[tool.devstack.doctor]\nskip = 1",
            "tool.devstack.doctor.skip: unknown key — remove it or use one of: ignore",
        ),
        (
            '[tool.devstack.app]\nnodes = 3\n[tool.devstack.server]\nlisten = "127.0.0.1:5002"',
            (
                "tool.devstack.server.listen: port 5002 is one of the app ports 5001-5003 (app.nodes = 3) "
                "— give "
                "nginx a port outside server.app_port .. server.app_port + app.nodes - 1"
            ),
        ),
        ("tool = 3", "[tool.devstack]: section missing — add a [tool.devstack] table"),
        ("[tool]\nblack = 1", "[tool.devstack]: section missing — add a [tool.devstack] table"),
    ],
)
def test_pyproject_refusals_name_the_whole_key(here: Path, text: str, line: str) -> None:
    assert said(here, text + "\n", "pyproject.toml") == f"pyproject.toml: {line}"


def test_a_config_every_user_may_write_is_refused(here: Path) -> None:
    path = here / "devstack.toml"
    path.write_text("")
    path.chmod(0o666)
    with pytest.raises(DevstackError) as raised:
        config.load(path)
    assert str(raised.value).startswith(f"refusing {path}: it is writable by every user — ")
    assert str(raised.value).endswith(f"={here}")


def test_a_config_of_exactly_the_limit_is_read(here: Path) -> None:
    (here / "devstack.toml").write_bytes(b"#" * config.MAX_CONFIG_BYTES)
    assert config.load(here / "devstack.toml").source == b"#" * config.MAX_CONFIG_BYTES


def test_variables_of_exactly_the_total_limit_are_taken() -> None:
    # name + value + 2 bytes ("=" and the NUL) per variable, as the kernel counts them
    values = {f"V{i:02}": "x" * (config.ENV_TOTAL_MAX // 32 - 5) for i in range(32)}
    assert sum(len(k) + len(v) + 2 for k, v in values.items()) == config.ENV_TOTAL_MAX
    config.check_env(values, "devstack.toml", "app.env")
    values["V00"] += "x"
    with pytest.raises(DevstackError) as raised:
        config.check_env(values, "devstack.toml", "app.env")
    assert str(raised.value) == (
        "devstack.toml: app.env: the variables hold 1024 KiB, over 1024 KiB in all — put the data in files "
        "and pass their paths"
    )


def test_a_dotenv_variable_is_named_without_a_table() -> None:
    # project/envfiles.py checks a .env file's variables with no table: the key is the name alone.
    with pytest.raises(DevstackError) as raised:
        config.check_env({"A=B": "1"}, ".env", "")
    assert str(raised.value) == ".env: A=B: not a usable variable name — use letters, digits and _"
    with pytest.raises(DevstackError) as raised:
        config.check_env({"A": "1\x00"}, ".env", "")
    assert str(raised.value) == ".env: A: the value holds a NUL byte — remove it"


def test_parse_alone_names_the_file_and_plain_keys(tmp_path: Path) -> None:
    # parse() without load(): the file is shown as given, the keys carry no prefix.
    with pytest.raises(DevstackError) as raised:
        config.parse({"app": {"threads": 0}}, tmp_path / "devstack.toml")
    assert str(raised.value) == (
        f"{tmp_path / 'devstack.toml'}: app.threads: 0 is out of range — use a number from 1 to 1000"
    )


def test_a_config_that_cannot_be_read_says_why(here: Path) -> None:
    (here / "devstack.toml").mkdir()
    line = refusal(here / "devstack.toml", here)
    assert line == "devstack.toml: cannot read: Is a directory — check its permissions"


def test_nesting_too_deep_for_the_toml_reader(here: Path) -> None:
    text = "a = " + "[" * 100_000
    try:  # this interpreter's tomllib: recursion (3.11-3.13) or, in a later one, its own refusal
        tomllib.loads(text)
        expected = "unreachable: the text is not TOML"
    except RecursionError:
        expected = "devstack.toml: nested deeper than 16 levels — flatten the nested arrays/tables"
    except tomllib.TOMLDecodeError as exc:
        expected = f"devstack.toml: not valid TOML ({exc}) — fix the syntax"
    (here / "devstack.toml").write_text(text)
    assert refusal(here / "devstack.toml", here) == expected


def test_a_project_folder_named_with_a_control_character(tmp_path: Path) -> None:
    # The folder nginx serves is written into nginx.conf: a newline in the project's own path
    # (not in anything devstack.toml says) is refused too.
    root = make_root(tmp_path / "pro\x01ject")
    (root / "devstack.toml").write_text("")
    with pytest.raises(DevstackError) as raised:
        config.load(root / "devstack.toml")
    shown = str(root / "devstack.toml").replace("\x01", "\\x01")  # the line stays one line
    static = repr(str((root / "static").resolve()))  # repr: the \x01 as the line shows it
    assert str(raised.value) == f"{shown}: static.dir: {static} holds a control character — rename the folder"
