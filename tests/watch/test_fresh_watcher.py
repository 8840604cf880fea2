"""The freshness watcher inside `devstack up`: every static edit proven served, or shouted STALE."""

from __future__ import annotations

import pytest

from devstack.stack import probes
from tests.support.stack import Project, wait_for

pytestmark = pytest.mark.needs_nginx


def watcher_log(project: Project) -> str:
    path = project.state_dir / "logs" / "watcher.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_every_static_edit_is_verified_fresh(stack: Project) -> None:
    assert wait_for(lambda: "watching" in watcher_log(stack))
    css = stack.root / "static/css/app.css"
    pids = stack.recorded_pids()
    for n in range(3):
        css.write_text(f"h1 {{ color: rgb({n}, 0, 0); }}\n", encoding="utf-8")
        assert wait_for(lambda n=n: watcher_log(stack).count("fresh  css/app.css") > n), watcher_log(stack)
    # A new file (created, not modified) and an editor's swap file (ignored).
    (stack.root / "static/css/new.css").write_text("p { margin: 0 }\n", encoding="utf-8")
    (stack.root / "static/css/.app.css.swp").write_bytes(b"\0" * 16)
    assert wait_for(lambda: "fresh  css/new.css" in watcher_log(stack)), watcher_log(stack)
    assert ".swp" not in watcher_log(stack)
    assert "STALE" not in watcher_log(stack)
    assert stack.recorded_pids() == pids  # nothing restarted
    served = probes.http_get(stack.url + "/static/css/app.css").body
    assert served == css.read_bytes()


def test_polling_watcher_on_request(project: Project) -> None:
    """static.polling = "always" (what shared folders get automatically): same proof, by polling."""
    project.write_config(static='polling = "always"')
    project.up_detached()
    assert wait_for(lambda: "(polling)" in watcher_log(project)), watcher_log(project)
    css = project.root / "static/css/app.css"
    css.write_text("h1 { color: rgb(1, 1, 1); }\n", encoding="utf-8")
    assert wait_for(lambda: "fresh  css/app.css" in watcher_log(project)), watcher_log(project)
