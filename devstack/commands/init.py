"""`devstack init`: write a commented devstack.toml for the project here. Never overwrites."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.errors import DevstackError
from devstack.project import asyncmode, layout
from devstack.project.config import CONFIG_NAME
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
    # gevent.monkey.patch_all() in the app: it is written for the gevent worker.
    module = found.wsgi.split(":", 1)[0] if found else "app"
    patched = asyncmode.scan(app_dir, module, root).gevent_patch
    worker = "gevent" if patched is not None else "gthread"
    text = templates.render(
        "devstack.toml.j2",
        wsgi=found.wsgi if found else "app:app",
        app_dir=os.path.relpath(app_dir, root),
        static_dir=Path(static_rel).as_posix() if static_rel else "",
        static_url=found.static_url if found else "/static/",
        worker=worker,
    )
    target.write_text(text, encoding="utf-8")
    what = f"{found.wsgi} ({found.how})" if found else "no Flask app found: set app.wsgi"
    where = f"static {Path(static_rel).as_posix()!r}" if static else "no static folder: nginx proxies all"
    chose = f", worker gevent ({patched.code} in {patched.where})" if patched is not None else ""
    env.console("err").print(
        f"wrote {target.name}: {what}, {where}{chose}; run `devstack up` to start the stack", soft_wrap=True
    )
    return 0
