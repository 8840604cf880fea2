"""The app's static and template folders as the app itself knows them: its url_map, asked in
the app's own interpreter (a subprocess; never imported into devstack's process).

`init` asks only when the source holds a blueprint whose folders or url_prefix are no literals
(project/layout.py reads every other case). Read-only: the app is imported (its module-level
code runs, as `flask routes` would run it), nothing is served; the answer is one JSON line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from devstack.system import runner

TIMEOUT = 20.0

# Runs in the app's interpreter: argv[1] the app folder, argv[2] module:attr (attr may be a
# factory call, as gunicorn takes it).
SCRIPT = r"""
import json, os, sys, importlib
sys.path.insert(0, sys.argv[1])
module, _, attr = sys.argv[2].partition(":")
mod = importlib.import_module(module)
attr = attr or "app"
if attr.endswith(")"):
    name = attr.split("(", 1)[0]
    app = getattr(mod, name)()
else:
    app = getattr(mod, attr)
static = []
for rule in app.url_map.iter_rules():
    ep = rule.endpoint
    if ep != "static" and not ep.endswith(".static"):
        continue
    owner = app if ep == "static" else app.blueprints.get(ep.rsplit(".", 1)[0])
    if owner is None or not owner.static_folder or not rule.rule.endswith("/<path:filename>"):
        continue
    url = rule.rule[: -len("<path:filename>")]
    static.append({"url": url, "dir": os.path.abspath(owner.static_folder), "app": ep == "static"})
templates = []
for owner in [app, *app.blueprints.values()]:
    if owner.template_folder:
        templates.append(os.path.abspath(os.path.join(owner.root_path, owner.template_folder)))
print("DEVSTACK-APPMAP " + json.dumps({"static": static, "templates": templates}))
"""


@dataclass(frozen=True)
class AppMap:
    static: tuple[tuple[str, Path, bool], ...]  # (URL prefix with both slashes, folder, the app's own)
    templates: tuple[Path, ...]


def ask(python: str, app_dir: Path, wsgi: str, run: runner.Run = runner.run) -> AppMap | str:
    """The app's static routes and template folders, or one line saying why they are unknown."""
    result = run([python, "-c", SCRIPT, str(app_dir), wsgi], timeout=TIMEOUT, cwd=app_dir)
    if result.code == runner.TIMED_OUT:
        return f"importing {wsgi} with {python} took over {TIMEOUT:g} s"
    line = next((ln for ln in result.out.splitlines() if ln.startswith("DEVSTACK-APPMAP ")), "")
    if not result.ok or not line:
        last = (result.err.strip().splitlines() or ["no answer"])[-1]
        return f"importing {wsgi} with {python} failed: {last[:200]}"
    try:
        data = json.loads(line.split(" ", 1)[1])
        static = tuple(
            (
                "/" + str(s["url"]).strip("/") + "/" if str(s["url"]).strip("/") else "/",
                Path(s["dir"]),
                bool(s["app"]),
            )
            for s in data["static"]
        )
        templates = tuple(Path(t) for t in data["templates"])
    except (ValueError, KeyError, TypeError):
        return f"importing {wsgi} with {python}: an answer devstack cannot read"
    return AppMap(static, templates)
