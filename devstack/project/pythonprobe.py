"""What devstack asks the app's interpreter (project/apppython.py), and where that interpreter
is likely to be before the config is read (the project root, its venvs).

Imports nothing heavy: speed/headstart.py uses it before devstack's own
imports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from devstack.system import trust

# The modules whose presence changes the plan (worker, async mode, reload engine, websockets;
# packaging: gunicorn 26+'s gevent worker imports it); engineio also for its version
# (VERSIONED), which decides whether its websockets work.
PROBED = (
    "gevent",
    "eventlet",
    "flask_socketio",
    "simple_websocket",
    "inotify",
    "flask",
    "engineio",
    "packaging",
    "redis",  # Flask-SocketIO's message_queue= needs it (app.nodes > 1, [queue])
)
# Module -> its distribution, whose version the probe reads from the .dist-info folder's name
# beside it (importlib.metadata would cost ~40 ms of a ~55 ms probe).
VERSIONED = {"engineio": "python_engineio"}

# gunicorn's version from its own __init__ (version_info since 0.x): importlib.metadata was ~40 ms
# of this subprocess's ~55, and an importable gunicorn is what `-m gunicorn` needs anyway.
SCRIPT = """
import importlib.util, json, os, sys
try:
    import gunicorn
    version = gunicorn.__version__
except ImportError:
    version = None
except AttributeError:  # a gunicorn folder without its __init__'s version: ask the metadata
    from importlib import metadata
    try:
        version = metadata.version("gunicorn")
    except metadata.PackageNotFoundError:
        version = None
versions = {}
for module, dist in json.loads(sys.argv[1]).items():
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        site = os.path.dirname(os.path.dirname(spec.origin))
        for name in os.listdir(site):
            if name.startswith(dist + "-") and name.endswith(".dist-info"):
                versions[dist.replace("_", "-")] = name[len(dist) + 1 : -len(".dist-info")]
print(json.dumps({
    "version": "%d.%d.%d" % sys.version_info[:3],
    "gunicorn": version,
    "has": [m for m in sys.argv[2:] if importlib.util.find_spec(m) is not None],
    "versions": versions,
    "path": [p for p in sys.path if os.path.isdir(p)],
}))
"""


def argv(python: str) -> list[str]:
    return [python, "-I", "-c", SCRIPT, json.dumps(VERSIONED), *PROBED]


def guess(
    config_arg: str | None,
    environ: Mapping[str, str] = os.environ,
    cwd: str | None = None,
    is_file: Callable[[str], bool] = os.path.isfile,
) -> str | None:
    """apppython.locate's likely answer before the config is read: the same order, without
    app.python (a guess that differs is simply not used). None: devstack's own interpreter."""
    return venv_python(project_root(config_arg, cwd, is_file)[0], environ, is_file)


def venv_python(
    root: str, environ: Mapping[str, str] = os.environ, is_file: Callable[[str], bool] = os.path.isfile
) -> str | None:
    """The first of root's candidates that exists (None: devstack's own interpreter); one
    another user could have planted (system/trust.py) is never run before the config is read."""
    found = next((path for path, _ in candidates(root, environ) if is_file(path)), None)
    return found if found is None or trust.problem(found, environ) is None else None


def project_root(
    config_arg: str | None, cwd: str | None = None, is_file: Callable[[str], bool] = os.path.isfile
) -> tuple[str, bool]:
    """(the folder config.find_config will most likely call the project root, sure): sure when
    it holds a devstack.toml, the file `up` reads first (a pyproject.toml may lack the section)."""
    if config_arg:
        path = os.path.realpath(config_arg)
        if path.endswith(".toml") or is_file(path):  # the file `up` reads, named
            return os.path.dirname(path), trust.problem(path) is None
        cwd = path  # a folder: searched from, as from the working folder
    root = start = os.path.realpath(cwd or os.getcwd())
    while True:
        if is_file(os.path.join(root, "devstack.toml")):
            # another user's devstack.toml is refused by `up` itself, with its one line
            return root, trust.problem(os.path.join(root, "devstack.toml")) is None
        if is_file(os.path.join(root, "pyproject.toml")):
            return root, False
        parent = os.path.dirname(root)
        if parent == root:
            return start, False
        root = parent


def candidates(root: str, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The venv interpreters apppython.locate tries after app.python, in its order: (path, why)."""
    out = []
    if environ.get("VIRTUAL_ENV"):
        out.append((os.path.join(environ["VIRTUAL_ENV"], "bin", "python"), "$VIRTUAL_ENV"))
    names = [".venv", "venv"]
    if environ.get("UV_PROJECT_ENVIRONMENT"):
        names.insert(0, environ["UV_PROJECT_ENVIRONMENT"])
    # join keeps an absolute UV_PROJECT_ENVIRONMENT as it is
    out += [(os.path.join(root, name, "bin", "python"), f"{name}/ in the project") for name in names]
    return [(os.path.normpath(path), why) for path, why in out]
