"""HostFacts made by hand, for unit tests of the pure planner (plan.build, plan.diff)."""

from __future__ import annotations

import dataclasses
from typing import Any

from devstack.project import apppython, asyncmode
from devstack.project.config import Config
from devstack.stack import livepaths as live_paths
from devstack.stack.facts import HostFacts

# An app interpreter with a recent gunicorn and what the example chat app needs.
APP_PYTHON = apppython.AppPython(
    "/project/.venv/bin/python",
    ".venv/ in the project",
    "3.12.3",
    (25, 1, 0),
    frozenset({"flask", "flask_socketio", "simple_websocket", "redis"}),
)


# The example chat app's SocketIO(app, async_mode=...): a mode the app chose itself.
# What every gthread app server's argv holds between --bind and --threads (stack/plan.py
# gunicorn_spec), spelled out: the tests pin it, they do not rebuild it.
GTHREAD_FLAGS = [
    "--workers",
    "1",
    "--worker-class",
    "gthread",
    "--graceful-timeout",
    "3",
    "--timeout",
    "120",
    "--access-logfile",
    "-",
    "--error-logfile",
    "-",
    "--log-level",
    "info",
]
THREADING = asyncmode.read('socketio = SocketIO(app, async_mode="threading")\n', "app.py")


def make_facts(config: Config, **changes: Any) -> HostFacts:
    """Facts of an ordinary Linux host for config: ext4, nginx and its mime.types installed, not
    root, the app's source using Socket.IO with async_mode. The paths follow the config (the
    socket folder as stack/livepaths.py derives it); `changes` replace any field."""
    state = config.state_dir.resolve()
    has_static = changes.pop("has_static", True)
    facts = HostFacts(
        app_python=APP_PYTHON,
        app_dir=config.app_dir,
        static_dir=config.static_dir,
        has_static=has_static,
        state_dir=state,
        static_alias=live_paths.static_alias(state, config.static_dir),
        control_socket=live_paths.control_socket(state),
        stream_socket=live_paths.stream_socket(state),
        notify_socket=live_paths.notify_socket(state),
        static_fstype="ext4",
        uses_socketio=True,
        async_use=THREADING,
        mime_types="/etc/nginx/mime.types",
        worker_user="",
        nginx="/usr/sbin/nginx",
        extra_static=tuple((r.url, (config.app_dir / r.dir).resolve()) for r in config.static.extra),
        path="/usr/local/bin:/usr/bin:/bin",
    )
    return dataclasses.replace(facts, **changes)


def python_with(*modules: str, gunicorn: tuple[int, ...] | None = (25, 1, 0)) -> apppython.AppPython:
    """The app's interpreter with exactly these modules importable."""
    return dataclasses.replace(APP_PYTHON, gunicorn=gunicorn, has=frozenset(modules))
