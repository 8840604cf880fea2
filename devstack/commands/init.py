"""`devstack init`: write a commented devstack.toml for the project here. Never overwrites."""

from __future__ import annotations

import re
from pathlib import Path

from devstack import console, templates
from devstack.config import CONFIG_NAME
from devstack.errors import DevstackError

_FLASK_RE = re.compile(r"^(\w+)\s*=\s*Flask\(", re.MULTILINE)
_SKIP = {".venv", "venv", "node_modules", ".git", "tests", ".devstack", "__pycache__"}


def find_app(root: Path) -> tuple[str, Path] | None:
    """(module:attr, app dir) of the first file that creates a Flask app, nearest first."""
    candidates = sorted(
        (p for p in root.rglob("*.py") if not _SKIP.intersection(p.relative_to(root).parts)),
        key=lambda p: (len(p.relative_to(root).parts), p.name not in ("app.py", "wsgi.py"), p.name),
    )
    for path in candidates[:500]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = _FLASK_RE.search(text)
        if match:
            module = path.stem if path.name != "__init__.py" else path.parent.name
            app_dir = path.parent if path.name != "__init__.py" else path.parent.parent
            return f"{module}:{match.group(1)}", app_dir
    return None


def run(root: Path) -> int:
    target = root / CONFIG_NAME
    if target.exists():
        raise DevstackError(
            f"{target} already exists — devstack init never overwrites; edit it, or remove it first"
        )
    found = find_app(root)
    wsgi, app_dir = found if found else ("app:app", root)
    static = next((d for d in ("static", "assets", "public") if (app_dir / d).is_dir()), "static")
    text = templates.render(
        "devstack.toml.j2", wsgi=wsgi, app_dir=app_dir.relative_to(root).as_posix() or ".", static_dir=static
    )
    target.write_text(text, encoding="utf-8")
    what = f"found {wsgi}" if found else "no Flask app found: set app.wsgi"
    console.err().print(
        f"wrote {target.name} ({what}, static dir {static!r}); run `devstack up` to start the stack"
    )
    return 0
