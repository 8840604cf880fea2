"""Where a project's Flask app and static folder are, read from its source (never imported).

What `devstack init` writes, found the way Flask itself would find them:
1. FLASK_APP in .flaskenv or .env (`pkg`, `pkg:app`, `pkg:create_app()`, `path/to/app.py`);
2. else the nearest module that makes an app: `app = Flask(...)` at module level, an app factory
   (`def create_app` / `def make_app`), or a wsgi.py doing `app = create_app()`;
3. the module path is what gunicorn imports: packages (`__init__.py`) walked up to the top, so
   `src/flaskr/__init__.py` is `flaskr` with app.dir `src`;
4. the static folder is Flask's: `static_folder=` and `static_url_path=` of that Flask() call
   when they are literals, else `static/` beside the module or inside the package; none on disk
   (or `static_folder=None`) means no static folder;
5. the blueprints' static and template folders: every `NAME = Blueprint(...)` under the app's
   folder, with `register_blueprint(NAME, url_prefix=...)`, by Flask's rules (sansio/
   blueprints.py): the static route is url_prefix + (static_url_path, else "/" + the folder's
   name), the folders are relative to the blueprint module's folder. A value that is no literal
   is left to `appmap.ask` (the app's own url_map, asked in its interpreter).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from devstack.project import envfiles

SKIP = {".venv", "venv", "env", "node_modules", ".git", "tests", "test", ".devstack", "__pycache__", ".tox"}
FACTORIES = ("create_app", "make_app")
PREFERRED = ("wsgi.py", "app.py", "__init__.py", "main.py", "server.py")
MAX_FILES = 500


@dataclass(frozen=True)
class Found:
    wsgi: str  # what gunicorn loads: "flaskr:create_app()", "app:app"
    app_dir: Path  # gunicorn --chdir: the folder the module is imported from
    static_dir: Path | None  # absolute; None: the app has no static folder
    static_url: str  # "/static/" unless static_url_path says otherwise
    source: Path  # the file that makes the app
    how: str  # why this one, as init says it
    extra_static: tuple[tuple[str, Path], ...] = ()  # the blueprints': (URL prefix, folder)
    templates: tuple[Path, ...] = ()  # the app's and blueprints' template folders on disk
    unresolved: tuple[str, ...] = ()  # blueprints whose folders or prefix are no literals


@dataclass(frozen=True)
class _AppDef:
    attr: str  # "app" or "create_app()"
    kwargs: dict[str, object]  # literal keyword arguments of its Flask() call
    dynamic_static: bool  # static_folder= given but not a literal


def detect(root: Path) -> Found | None:
    root = root.resolve()
    from_env = _from_flask_app(root)
    if from_env is not None:
        return from_env
    for path in _candidates(root):
        found = _from_file(root, path, None, f"found in {path.relative_to(root).as_posix()}")
        if found is not None:
            return found
    return None


def _candidates(root: Path) -> list[Path]:
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        files += [Path(folder) / n for n in names if n.endswith(".py")]
        if len(files) > MAX_FILES:
            break

    def rank(path: Path) -> tuple[int, int, str]:
        name = path.name
        return (len(path.relative_to(root).parts), PREFERRED.index(name) if name in PREFERRED else 9, name)

    return sorted(files, key=rank)[:MAX_FILES]


def _from_flask_app(root: Path) -> Found | None:
    for name in (".flaskenv", ".env"):
        value = envfiles.read(root, name).get("FLASK_APP", "").strip()
        if not value:
            continue
        target, _, attr = value.partition(":")
        how = f"FLASK_APP={value} in {name}"
        path: Path | None
        if target.endswith(".py") or "/" in target:
            path = (root / target).resolve()
            path = path / "__init__.py" if path.is_dir() else path
        else:
            path = _module_file(root, target)
        if path is not None and path.is_file():
            return _from_file(root, path, attr or None, how)
    return None


def _module_file(root: Path, dotted: str) -> Path | None:
    for base in (root, root / "src"):
        module = base.joinpath(*dotted.split("."))
        for candidate in (module.with_suffix(".py"), module / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _from_file(root: Path, path: Path, attr: str | None, how: str) -> Found | None:
    tree = _parse(path)
    if tree is None:
        return None
    app = _app_in(tree, attr)
    if app is None:
        app = _wsgi_call(root, path, tree, attr)
    if app is None:
        return None
    module, app_dir = module_path(path)
    static_dir, static_url = _static(path, app)
    root_path = Path(str(app.kwargs.get("_root") or path.parent))
    templates: list[Path] = []
    folder = app.kwargs.get("template_folder", "templates")
    if isinstance(folder, str) and (root_path / folder).is_dir():
        templates.append((root_path / folder).resolve())
    bps = blueprints(root_path)
    extra: list[tuple[str, Path]] = []
    taken = {static_url} if static_dir is not None else set()
    for bp in bps:
        if bp.templates is not None and bp.templates.is_dir() and bp.templates not in templates:
            templates.append(bp.templates)
        # The app's own static route wins over a blueprint's at the same URL (Flask's docs).
        if bp.static is not None and bp.static.is_dir() and bp.url is not None and bp.url not in taken:
            taken.add(bp.url)
            extra.append((bp.url, bp.static))
    unresolved = tuple(bp.name for bp in bps if bp.dynamic)
    return Found(
        f"{module}:{app.attr}",
        app_dir,
        static_dir,
        static_url,
        path,
        how,
        tuple(extra),
        tuple(templates),
        unresolved,
    )


@dataclass(frozen=True)
class Blueprint:
    """One `NAME = Blueprint(...)` as read from source."""

    name: str  # the variable
    static: Path | None  # absolute
    url: str | None  # "/chat/static/"; None when static_folder is unset or not known
    templates: Path | None
    dynamic: bool  # a folder, URL or url_prefix that is no literal: only the app knows it


_BP_KEYS = ("static_folder", "static_url_path", "template_folder", "url_prefix")


def blueprints(root: Path) -> list[Blueprint]:
    """Every module-level or factory-local `NAME = Blueprint(...)` in the .py files under root,
    with the url_prefix its register_blueprint(NAME, ...) gives it."""
    found: list[tuple[str, Path, dict[str, object], bool]] = []
    registered: dict[str, tuple[object, bool]] = {}  # name -> (url_prefix, dynamic)
    aliases: dict[str, str] = {}  # `from .chat import bp as chat_bp`: chat_bp -> bp
    receivers: dict[str, str] = {}  # blueprint -> the variable whose register_blueprint took it
    for path in _candidates(root):
        tree = _parse(path)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                aliases.update({a.asname: a.name for a in node.names if a.asname})
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                target = node.targets[0]
                if called == "Blueprint" and len(node.targets) == 1 and isinstance(target, ast.Name):
                    kwargs, dynamic = _keywords(node.value, _BP_KEYS)
                    found.append((target.id, path, kwargs, dynamic))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register_blueprint"
                and node.args
            ):
                arg = node.args[0]
                name = arg.attr if isinstance(arg, ast.Attribute) else getattr(arg, "id", "")
                kwargs, dynamic = _keywords(node, ("url_prefix",))
                owner = node.func.value
                receivers[aliases.get(name, name)] = owner.id if isinstance(owner, ast.Name) else ""
                registered[aliases.get(name, name)] = (kwargs.get("url_prefix"), dynamic)
    names = {name for name, *_ in found}
    # Nested (parent_bp.register_blueprint(child)): the parent's prefix comes first, and the
    # parent's own registration decides it: left to the app's url_map.
    for name, receiver in receivers.items():
        if receiver in names and name in registered:
            registered[name] = (registered[name][0], True)
    # A register_blueprint(x) whose x is no blueprint read here (a loop, a list): which one it
    # registers, and how, only the app knows.
    unknown = any(name not in names for name in registered)
    result = []
    for name, path, kwargs, dynamic in found:
        if name not in registered and not unknown:
            continue  # never registered: Flask serves none of its files
        prefix, prefix_dynamic = registered.get(name, (None, unknown))
        if prefix is None:
            prefix = kwargs.get("url_prefix")
        folder = kwargs.get("static_folder")
        static = (path.parent / folder).resolve() if isinstance(folder, str) else None
        url: str | None = None
        if static is not None and not prefix_dynamic:
            own = kwargs.get("static_url_path")
            rule = (
                own.rstrip("/") if isinstance(own, str) else "/" + os.path.basename(str(folder)).rstrip("/")
            )
            if isinstance(prefix, str):
                rule = "/".join((prefix.rstrip("/"), rule.lstrip("/")))
            url = "/" + rule.strip("/") + "/" if rule.strip("/") else None
        tpl = kwargs.get("template_folder")
        templates = (path.parent / tpl).resolve() if isinstance(tpl, str) else None
        result.append(Blueprint(name, static, url, templates, dynamic or prefix_dynamic))
    return result


def _keywords(call: ast.Call, names: tuple[str, ...]) -> tuple[dict[str, object], bool]:
    """The literal keyword arguments of call among names; True if one of them (or **kwargs)
    is not a literal."""
    kwargs: dict[str, object] = {}
    dynamic = False
    for keyword in call.keywords:
        if keyword.arg is None:
            dynamic = True  # **options: anything
        elif keyword.arg in names:
            try:
                kwargs[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                dynamic = True
    return kwargs, dynamic


def _flask_call(node: ast.AST) -> ast.Call | None:
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "Flask":
            return node
    return None


def _literal_kwargs(call: ast.Call | None) -> tuple[dict[str, object], bool]:
    kwargs: dict[str, object] = {}
    dynamic = False
    for keyword in call.keywords if call is not None else []:
        if keyword.arg in ("static_folder", "static_url_path", "template_folder"):
            try:
                kwargs[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                dynamic = dynamic or keyword.arg == "static_folder"
    return kwargs, dynamic


def _app_in(tree: ast.Module, attr: str | None) -> _AppDef | None:
    """`NAME = Flask(...)` or `def create_app(...)` at module level (attr, when given, decides)."""
    wanted = attr.split("(")[0] if attr else None
    apps: list[_AppDef] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            call = _flask_call(node.value)
            if call is not None and wanted in (None, node.targets[0].id):
                kwargs, dynamic = _literal_kwargs(call)
                apps.append(_AppDef(node.targets[0].id, kwargs, dynamic))
        elif isinstance(node, ast.FunctionDef) and (
            node.name == wanted or (wanted is None and node.name in FACTORIES)
        ):
            call = next((c for sub in ast.walk(node) if (c := _flask_call(sub)) is not None), None)
            if call is None and wanted is None:
                continue
            kwargs, dynamic = _literal_kwargs(call)
            shown = attr if attr and "(" in attr else f"{node.name}()"
            apps.append(_AppDef(shown, kwargs, dynamic))
    # A module-level app wins over a factory in the same file (that is what `flask run` picks).
    apps.sort(key=lambda a: a.attr.endswith(")"))
    return apps[0] if apps else None


def _wsgi_call(root: Path, path: Path, tree: ast.Module, attr: str | None) -> _AppDef | None:
    """wsgi.py: `from flaskr import create_app` then `app = create_app()` at module level."""
    imported: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Name) and isinstance(value, ast.Call)):
            continue
        func = value.func
        if not isinstance(func, ast.Name) or func.id not in imported:
            continue
        if attr not in (None, target.id) or (attr is None and func.id not in FACTORIES):
            continue
        source = _module_file(path.parent, imported[func.id]) or _module_file(root, imported[func.id])
        inner = _parse(source) if source is not None else None
        factory = _app_in(inner, func.id) if inner is not None else None
        kwargs, dynamic = (factory.kwargs, factory.dynamic_static) if factory else ({}, False)
        # The static folder is the factory's package's, so remember where that is.
        return _AppDef(target.id, {**kwargs, "_root": str(source.parent) if source else ""}, dynamic)
    return None


def module_path(path: Path) -> tuple[str, Path]:
    """(dotted module, the folder it is imported from): packages walked up to the top."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


def _static(path: Path, app: _AppDef) -> tuple[Path | None, str]:
    # Flask's root_path: the package folder for a package, the module's folder otherwise.
    root_path = Path(str(app.kwargs.get("_root") or path.parent))
    url_path = app.kwargs.get("static_url_path")
    folder = app.kwargs.get("static_folder", "static")
    if folder is None:
        return None, "/static/"
    if not isinstance(folder, str):
        folder = "static"
    static = (root_path / folder).resolve()
    if isinstance(url_path, str):
        # static_url_path="": the site root ("/<path:filename>"), not "//".
        url = "/" + url_path.strip("/") + "/" if url_path.strip("/") else "/"
    else:
        url = "/" + Path(folder).name + "/"  # Flask: static_url_path defaults to the folder's name
    if not static.is_dir():
        return None, url
    return static, url
