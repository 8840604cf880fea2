"""Which Socket.IO async mode the app asks for, read from its source with `ast` (never imported).

Flask-SocketIO (python-engineio underneath) takes `async_mode=` from `SocketIO(...)` or
`init_app(...)`; left unset it tries eventlet, then gevent, then threading, and keeps the first
that imports. What the app asks for decides what devstack must do before gunicorn starts:

- a literal `async_mode='eventlet'`, or `eventlet.monkey_patch()`: it needs gunicorn's eventlet
  worker (gone in gunicorn 26) — plan.build says so, naming the file and line;
- `gevent.monkey.patch_all()`: it wants the gevent worker (`devstack init` writes it);
- no async_mode at all: the auto-detection, which gunicorn_conf.py keeps from picking a mode
  the worker cannot run (eventlet under gthread: every websocket fails).

Read from the files gunicorn imports for the app: its module (module.py or module/__init__.py)
and, for a package, the package's other modules (a factory's extensions.py makes the SocketIO).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_FILES = 60
MAX_BYTES = 512 * 1024


@dataclass(frozen=True)
class Site:
    """One place in the app's source: file (as shown to the user) and line, and what is there."""

    file: str
    line: int
    code: str  # as the user wrote it, shortened: "SocketIO(app)", "eventlet.monkey_patch()"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class AsyncUse:
    """What the app's source asks of Socket.IO's async mode."""

    servers: tuple[Site, ...] = ()  # SocketIO(...) calls
    modes: tuple[tuple[str, Site], ...] = ()  # literal async_mode='x' (SocketIO or init_app)
    dynamic: Site | None = None  # async_mode (or **kwargs) given but not a literal: unknown
    eventlet_patch: Site | None = None  # eventlet.monkey_patch()
    gevent_patch: Site | None = None  # gevent.monkey.patch_all()

    @property
    def explicit(self) -> tuple[str, Site] | None:
        """The first literal async_mode, if any."""
        return self.modes[0] if self.modes else None

    @property
    def auto(self) -> bool:
        """A SocketIO server whose mode Flask-SocketIO picks itself (nothing says which)."""
        return bool(self.servers) and not self.modes and self.dynamic is None

    @property
    def wants_eventlet(self) -> Site | None:
        """Where the app asks for eventlet itself (a literal mode, or monkey patching)."""
        for mode, site in self.modes:
            if mode == "eventlet":
                return site
        return self.eventlet_patch


NONE = AsyncUse()


def read(source: str, shown: str) -> AsyncUse:
    """The async-mode facts of one module's source (shown: the file as messages name it).
    Source that does not parse says nothing: gunicorn reports the SyntaxError itself."""
    try:
        tree = ast.parse(source, filename=shown)
    except (SyntaxError, ValueError):
        return NONE
    names = _imported_names(tree)
    lines = source.splitlines()
    servers: list[Site] = []
    modes: list[tuple[str, Site]] = []
    dynamic: Site | None = None
    eventlet_patch: Site | None = None
    gevent_patch: Site | None = None
    main_only = _under_main_guard(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in main_only:
            continue
        dotted = _dotted(node.func)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        full = names.get(head, head) + (f".{rest}" if rest else "")
        last = dotted.rsplit(".", 1)[-1]
        is_server = last == "SocketIO" or full == "flask_socketio.SocketIO"  # also `as SIO`
        patch = full in ("eventlet.monkey_patch", "gevent.monkey.patch_all")
        if not (patch or is_server or last == "init_app"):
            continue
        site = Site(shown, node.lineno, _code(node, lines))  # only for the calls that count
        if full == "eventlet.monkey_patch":
            eventlet_patch = eventlet_patch or site
            continue
        if full == "gevent.monkey.patch_all":
            gevent_patch = gevent_patch or site
            continue
        if is_server:
            servers.append(site)
        for keyword in node.keywords:
            if keyword.arg is None:  # **options: the mode may be in there
                if is_server:
                    dynamic = dynamic or site
            elif keyword.arg == "async_mode":
                value = keyword.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    modes.append((value.value, site))
                elif not (isinstance(value, ast.Constant) and value.value is None):
                    dynamic = dynamic or site
    return AsyncUse(tuple(servers), tuple(modes), dynamic, eventlet_patch, gevent_patch)


def merge(uses: Iterable[AsyncUse]) -> AsyncUse:
    """Several modules' facts as one (the first site of each kind wins)."""
    servers: list[Site] = []
    modes: list[tuple[str, Site]] = []
    dynamic = eventlet_patch = gevent_patch = None
    for use in uses:
        servers += use.servers
        modes += use.modes
        dynamic = dynamic or use.dynamic
        eventlet_patch = eventlet_patch or use.eventlet_patch
        gevent_patch = gevent_patch or use.gevent_patch
    return AsyncUse(tuple(servers), tuple(modes), dynamic, eventlet_patch, gevent_patch)


def app_files(app_dir: Path, module: str) -> list[Path]:
    """The files gunicorn imports for the app module: module.py, or a package's __init__.py and
    its other modules (not its subpackages)."""
    base = app_dir.joinpath(*module.split("."))
    files = [base.with_suffix(".py")] if base.with_suffix(".py").is_file() else []
    if (base / "__init__.py").is_file():
        files.append(base / "__init__.py")
        files += sorted(p for p in base.glob("*.py") if p.name != "__init__.py")
    return files[:MAX_FILES]


def scan(app_dir: Path, module: str, root: Path | None = None) -> AsyncUse:
    """The app's async-mode facts from its files (shown relative to root, the project's folder)."""
    uses = []
    for path in app_files(app_dir, module):
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        uses.append(read(source, _shown(path, root or app_dir)))
    return merge(uses)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _under_main_guard(tree: ast.Module) -> set[int]:
    """Nodes under `if __name__ == "__main__":` — `python app.py` runs them, gunicorn never does."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            for child in node.body:
                skipped.update(id(inner) for inner in ast.walk(child))
    return skipped


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides) and any(
        isinstance(x, ast.Constant) and x.value == "__main__" for x in sides
    )


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it was imported as: `from gevent import monkey` -> monkey: gevent.monkey."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _code(node: ast.Call, lines: list[str]) -> str:
    """The call as written, on one line (ast.get_source_segment splits the whole source per call)."""
    end = node.end_lineno or node.lineno
    chunk = lines[node.lineno - 1 : end]
    if not chunk:
        return ""
    if len(chunk) == 1:
        chunk = [chunk[0][node.col_offset : node.end_col_offset]]
    else:
        chunk[0] = chunk[0][node.col_offset :]
        chunk[-1] = chunk[-1][: node.end_col_offset]
    text = " ".join(" ".join(chunk).split())
    text = text.replace("( ", "(").replace(" )", ")")
    return text if len(text) <= 80 else text[:77] + "..."
