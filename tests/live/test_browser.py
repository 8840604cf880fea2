"""A real browser (headless Chromium via Playwright): an edited stylesheet shows after a normal
reload with nothing restarted; behind nginx with `expires 30d` it does not, and doctor says why."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import BROWSER_MARKS, CHROMIUM, FLAGS
from tests.support.doctor import doctor, finding, gunicorn, nginx, render
from tests.support.stack import EXAMPLE, Project, free_ports, wait_for

pytestmark = BROWSER_MARKS

H1_COLOR = "getComputedStyle(document.querySelector('h1')).color"
OLD, NEW = "rgb(0, 0, 255)", "rgb(255, 0, 0)"


@pytest.fixture
def page() -> Iterator[Any]:
    """One page in one context: the HTTP cache lives from the first load to the reload."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser.new_context().new_page()
        finally:
            browser.close()


def _edit_css(static: Path) -> None:
    css = static / "css" / "app.css"
    text = css.read_text()
    assert OLD in text
    css.write_text(text.replace(OLD, NEW))


def test_edited_css_shows_after_a_normal_reload(stack: Project, page: Any) -> None:
    page.goto(stack.url + "/")
    assert page.evaluate(H1_COLOR) == OLD
    pids = stack.recorded_pids()
    _edit_css(stack.root / "static")
    log = stack.state_dir / "logs" / "watcher.log"
    assert wait_for(lambda: "fresh  css/app.css" in log.read_text(), 10)
    page.reload()  # a normal reload, not a hard one
    assert page.evaluate(H1_COLOR) == NEW
    assert stack.recorded_pids() == pids  # nothing restarted


def test_expires_30d_keeps_old_css_and_doctor_says_why(tmp_path: Path, page: Any) -> None:
    app_dir = tmp_path / "chat"
    shutil.copytree(EXAMPLE, app_dir, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    static = app_dir / "static"
    app_port, port = free_ports(2)
    # Flask-SocketIO's documented nginx example, static part.
    docs_static = "location /static/ {\n alias STATIC/;\n expires 30d;\n }"
    with (
        gunicorn(app_dir, app_port, "-k", "gthread", "--threads", "8", log=tmp_path / "gunicorn.log"),
        nginx(render(tmp_path, port, app_port, static, static=docs_static), tmp_path / "ngx", port) as conf,
    ):
        url = f"http://127.0.0.1:{port}"
        page.goto(url + "/")
        assert page.evaluate(H1_COLOR) == OLD
        _edit_css(static)
        page.reload()
        assert page.evaluate(H1_COLOR) == OLD  # the browser kept its copy
        code, report = doctor("static", "--url", url, "--nginx-conf", str(conf), "--static-dir", str(static))
    check = finding(report, "static.explicit-cache")
    assert check["status"] == "error" and "30 days" in check["finding"], check
    assert any(e["text"] == "expires 30d;" for e in check["evidence"])
    assert finding(report, "static.ladder")["status"] == "ok"  # the server itself is fresh
    assert code == 1
