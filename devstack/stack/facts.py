"""What planning needs to know about this machine and the project's files, gathered once.

`gather` is the only I/O of planning: the mount table, the app interpreter's facts (one
subprocess, project/apppython.py), the app's source, .env/.flaskenv, the Procfile, the nginx binary and
its mime.types, the worker user. plan.build then decides from a HostFacts value alone, so it is
unit-tested over facts made by hand.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack import speed
from devstack.errors import DevstackError
from devstack.project import apppython, asyncmode, envfiles, procfile
from devstack.project.config import Config
from devstack.stack import livepaths as live_paths
from devstack.system import fsinfo

NGINX_FALLBACKS = (
    "/usr/sbin/nginx",
    "/usr/local/sbin/nginx",
    "/usr/local/bin/nginx",
    "/opt/homebrew/bin/nginx",
)
MIME_TYPES = (
    "/etc/nginx/mime.types",
    "/usr/local/nginx/conf/mime.types",
    "/opt/homebrew/etc/nginx/mime.types",
    "/usr/local/etc/nginx/mime.types",
)


@dataclass(frozen=True)
class HostFacts:
    """Everything planning reads from this machine and the project, gathered once."""

    app_python: apppython.AppPython  # the interpreter gunicorn runs under, and what it has
    # The config's folders as resolved on this host (Config's properties resolve on every use).
    app_dir: Path
    static_dir: Path
    has_static: bool
    state_dir: Path
    # Where nginx.conf names the static folder and the stack's sockets (stack/livepaths.py).
    static_alias: Path
    control_socket: Path
    stream_socket: Path
    notify_socket: Path
    static_fstype: str  # of the folder nginx serves (the static folder, else the app's)
    uses_socketio: bool  # the app's source names flask_socketio
    mime_types: str | None  # nginx's own mime.types; None: the state dir gets a fallback
    worker_user: str  # nginx's `user` line when started as root, else ""
    nginx: str  # the binary
    dotenv: Mapping[str, str] = field(default_factory=dict)  # .flaskenv/.env, not set in os.environ
    procfile: Mapping[str, str] = field(default_factory=dict)
    no_color: bool = False  # NO_COLOR is set: children are asked for no color whatever `colors` says
    # [[static.extra]] as served here: (URL prefix, absolute folder), a blueprint's static each.
    extra_static: tuple[tuple[str, Path], ...] = ()
    # The extra processes run "as if the venv were activated": the app interpreter's bin folder
    # first on PATH (PATH as devstack found it) and VIRTUAL_ENV when that interpreter is a venv's.
    path: str = ""
    virtual_env: str = ""
    # What the app's source asks of Socket.IO's async mode (read with ast: project/asyncmode.py).
    async_use: asyncmode.AsyncUse = asyncmode.NONE
    redis: str = ""  # redis-server, when devstack runs the message queue (config.queue.started)
    # Its password (requirepass): kept in the state dir (0600) once `up` wrote it, else a new one.
    # Loopback alone would let any local user publish to the app's clients.
    queue_secret: str = ""


def gather(config: Config, python: str | None = None, environ: Mapping[str, str] = os.environ) -> HostFacts:
    """All the I/O planning needs, once. `python` forces the app's interpreter (the VM agent
    runs the app in its own venv); otherwise project/apppython.py finds it."""
    app = apppython.find(
        config, python, asker=speed.python_facts
    )  # first: its errors are the likeliest, as before
    app_dir = config.app_dir
    static_dir = config.static_dir
    has_static = static_dir.is_dir()
    state_dir = config.state_dir.resolve()
    served = static_dir if has_static else app_dir
    source = app_source(config.app_dir, config.app.module)
    return HostFacts(
        app_python=app,
        app_dir=app_dir,
        static_dir=static_dir,
        has_static=has_static,
        state_dir=state_dir,
        static_alias=live_paths.static_alias(state_dir, static_dir),
        control_socket=live_paths.control_socket(state_dir),
        stream_socket=live_paths.stream_socket(state_dir),
        notify_socket=live_paths.notify_socket(state_dir),
        static_fstype=fsinfo.fstype(served),
        uses_socketio="flask_socketio" in source,
        mime_types=nginx_mime_types(),
        worker_user=worker_user(served),
        nginx=find_nginx(environ),
        dotenv=envfiles.load(config.root, environ),
        procfile=procfile.read_procfile(config.root),
        no_color=bool(environ.get("NO_COLOR")),
        extra_static=tuple((route.url, (app_dir / route.dir).resolve()) for route in config.static.extra),
        path=environ.get("PATH", os.defpath),
        virtual_env=venv_of(app.path),
        async_use=asyncmode.scan(app_dir, config.app.module, config.root),
        redis=find_redis(environ) if config.queue.started else "",
        queue_secret=(read_queue_secret(state_dir) or new_queue_secret()) if config.queue.started else "",
    )


def venv_of(python: str) -> str:
    """The venv an interpreter path belongs to ("" if none): <venv>/bin/python beside
    <venv>/pyvenv.cfg. The path as given, never resolved (a venv's python is a symlink)."""
    folder = Path(python).parent.parent
    return str(folder) if (folder / "pyvenv.cfg").is_file() else ""


def app_source(app_dir: Path, module: str) -> str:
    """The app module's source text (module.py and/or module/__init__.py; "" if unreadable):
    names in it are searched for, because the app is never imported in devstack's process."""
    module_path = app_dir.joinpath(*module.split("."))
    texts = []
    for candidate in (module_path.with_suffix(".py"), module_path / "__init__.py"):
        try:
            texts.append(candidate.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return "\n".join(texts)


def nginx_mime_types() -> str | None:
    return next((candidate for candidate in MIME_TYPES if Path(candidate).is_file()), None)


def worker_user(served: Path) -> str:
    """ "owner group" of the served folder when devstack runs as root, else "" (nginx ignores
    `user` unless started as root): its workers then read the project as its owner."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    st = served.stat()
    try:
        return f"{pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name}"
    except KeyError:
        return ""


QUEUE_SECRET = "queue.secret"


def read_queue_secret(state_dir: Path) -> str:
    """The message queue's password as `up` wrote it ("" when there is none yet, or it is not
    a plain file of this user's: safefs never follows a planted link)."""
    from devstack.system import safefs

    try:
        text = safefs.read_text(state_dir / QUEUE_SECRET).strip()
    except (OSError, DevstackError, UnicodeDecodeError):
        return ""
    return text if text.isalnum() and len(text) >= 16 else ""


def new_queue_secret() -> str:
    import secrets

    return secrets.token_hex(16)


REDIS_FALLBACKS = ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")


def _find_binary(
    variable: str, name: str, fallbacks: tuple[str, ...], environ: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(the variable's value, the executable found): the variable if set, else name on PATH,
    else the fallbacks."""
    chosen = environ.get(variable)
    candidates = [chosen] if chosen else [shutil.which(name), *fallbacks]
    return chosen, next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def find_redis(environ: Mapping[str, str] = os.environ) -> str:
    """DEVSTACK_REDIS if set, else redis-server on PATH, else the usual places: the message queue
    of a stack with app.nodes > 1 (or [queue])."""
    chosen, found = _find_binary("DEVSTACK_REDIS", "redis-server", REDIS_FALLBACKS, environ)
    if found is None:
        where = f"DEVSTACK_REDIS={chosen}" if chosen else "PATH, /usr/bin, /usr/local/bin"
        raise DevstackError(
            f"redis-server is not installed (looked in {where}); app.nodes > 1 relays Socket.IO emits "
            "through it — install it: sudo apt-get install redis-server (macOS: brew install redis), "
            'or point queue.url at a Redis you run (e.g. url = "redis://127.0.0.1:6379/0")'
        )
    return found


def find_nginx(environ: Mapping[str, str] = os.environ) -> str:
    """DEVSTACK_NGINX if set, else nginx on PATH, else the usual sbin places (not on a user's PATH)."""
    chosen, found = _find_binary("DEVSTACK_NGINX", "nginx", NGINX_FALLBACKS, environ)
    if found is None:
        where = f"DEVSTACK_NGINX={chosen}" if chosen else "PATH, /usr/sbin, /usr/local/sbin"
        raise DevstackError(
            f"nginx is not installed (looked in {where}) — install it from your OS "
            "packages (Debian/Ubuntu: sudo apt-get install nginx-light; "
            "macOS: brew install nginx)"
        )
    return found
