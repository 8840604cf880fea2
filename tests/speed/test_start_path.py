"""What `up` imports before gunicorn starts (issue 13): config, facts, the plan, the backend and
the supervisor, and nothing that can wait until gunicorn boots. jinja2 (nginx.conf is rendered
while gunicorn boots), watchdog and the live-reload server (built then), http.client and ssl
(readiness), psutil (stopping, naming a port's owner) and importlib.metadata (the app python's
facts come from the cache once known) stay out of the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.stack import EXAMPLE, REPO

PROBE = """
import json, sys
from pathlib import Path
from devstack.commands import up  # everything `up` imports at the top
from devstack.backends import detached, foreground, local
from devstack.project import config
from devstack.stack import facts, plan
cfg = config.load(Path("devstack.toml"))
the_plan = plan.build(cfg, facts.gather(cfg))
before = sorted(sys.modules)
conf = the_plan.nginx_conf  # rendered on first use (by start(), once gunicorn runs)
print(json.dumps({"before": before, "after": sorted(sys.modules), "conf": conf}))
"""
DEFERRED = ("jinja2", "watchdog", "http.client", "ssl", "psutil", "importlib.metadata", "rich")


def loaded(root: Path, cache: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(cache))
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_up_reaches_gunicorn_without_the_deferred_imports(tmp_path: Path) -> None:
    root = tmp_path / "chat"
    (root / "static").mkdir(parents=True)
    (root / "app.py").write_text((EXAMPLE / "app.py").read_text())
    (root / "devstack.toml").write_text('[app]\nwsgi = "app:app"\n')
    (root / ".devstack").mkdir()  # the state dir, as `up` makes it before it renders
    first = loaded(root, tmp_path / "cache")  # asks the interpreter, fills the caches
    assert "importlib.metadata" in first["before"]
    assert "jinja2" in first["after"], "nginx.conf was not rendered on first use"
    second = loaded(root, tmp_path / "cache")
    early = [name for name in DEFERRED if name in second["before"]]
    assert early == [], f"imported before gunicorn starts: {early}"
    assert "jinja2" in second["after"] and second["conf"] == first["conf"]
    assert second["conf"] == first["conf"]
