"""`devstack init`: write a commented devstack.toml for the project here. Never overwrites."""

from __future__ import annotations

import json
import os
from pathlib import Path

from devstack.errors import DevstackError
from devstack.project import appmap, apppython, asyncmode, layout
from devstack.project.config import CONFIG_NAME, Config
from devstack.stack import templates
from devstack.system import env as env_mod
from devstack.system.env import Env


def run(root: Path, env: Env | None = None) -> int:
    env = env or env_mod.current()
    target = root / CONFIG_NAME
    if target.exists():
        raise DevstackError(
            f"{target} already exists — devstack init never overwrites; edit it, or remove it first"
        )
    found = layout.detect(root)
    root = root.resolve()
    app_dir = found.app_dir if found else root
    static = found.static_dir if found else (root / "static" if (root / "static").is_dir() else None)
    static_rel = os.path.relpath(static, app_dir) if static else ""
    static_url = found.static_url if found else "/static/"
    extra = list(found.extra_static) if found else []
    folders = list(found.templates) if found else []
    asked = ""
    if found is not None and found.unresolved:
        # A blueprint's folder or url_prefix is no literal: the app's own url_map knows it.
        asked, answer = _ask_the_app(root, found)
        if answer is not None:
            extra = [(url, folder) for url, folder, own in answer.static if not own and folder.is_dir()]
            folders = [t for t in answer.templates if t.is_dir()]
    # Template edits reach the tab through a worker reload: globs relative to app.dir, for the
    # folders the app watcher sees (those inside app.dir).
    reload_extra = [
        Path(os.path.relpath(t, app_dir)).as_posix() + "/*.html" for t in folders if app_dir in t.parents
    ]
    # gevent.monkey.patch_all() in the app: it is written for the gevent worker.
    module = found.wsgi.split(":", 1)[0] if found else "app"
    patched = asyncmode.scan(app_dir, module, root).gevent_patch
    worker = "gevent" if patched is not None else "gthread"
    text = templates.render(
        "devstack.toml.j2",
        wsgi=found.wsgi if found else "app:app",
        app_dir=os.path.relpath(app_dir, root),
        static_dir=Path(static_rel).as_posix() if static_rel else "",
        static_url=static_url,
        reload_extra=json.dumps(reload_extra) if reload_extra else "",
        extra_static=[
            {"url": json.dumps(url), "dir": json.dumps(Path(os.path.relpath(folder, app_dir)).as_posix())}
            for url, folder in extra
        ],
        worker=worker,
    )
    target.write_text(text, encoding="utf-8")
    what = f"{found.wsgi} ({found.how})" if found else "no Flask app found: set app.wsgi"
    where = f"static {Path(static_rel).as_posix()!r}" if static else "no static folder: nginx proxies all"
    if static and static_url == "/":
        where += " at the site root"
    parts = [
        what,
        where + (f", worker gevent ({patched.code} in {patched.where})" if patched is not None else ""),
    ]
    if extra:
        parts.append(
            "blueprint static " + ", ".join(f"{url} ({os.path.relpath(d, app_dir)})" for url, d in extra)
        )
    if reload_extra:
        parts.append("templates " + ", ".join(reload_extra))
    if asked:
        parts.append(asked)
    env.console("err").print(
        f"wrote {target.name}: {'; '.join(parts)}; run `devstack up` to start the stack", soft_wrap=True
    )
    return 0


def _ask_the_app(root: Path, found: layout.Found) -> tuple[str, appmap.AppMap | None]:
    """Ask the app's url_map in its interpreter: what init says about it, and the answer."""
    python, _why = apppython.locate(Config(path=root / CONFIG_NAME, root=root))
    names = ", ".join(found.unresolved)
    answer = appmap.ask(python, found.app_dir, found.wsgi)
    if isinstance(answer, str):
        return (
            f"blueprint {names}: folders not readable from source and {answer} — "
            "add [[static.extra]] url/dir by hand"
        ), None
    return f"blueprint {names} read from the app's url_map ({python})", answer
