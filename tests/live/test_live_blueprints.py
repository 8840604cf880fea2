"""Live reload for what blueprints bring (issue #25): a blueprint's CSS is swapped in place, a
template edit reloads the open tab once the new worker serves it — no FLASK_DEBUG, no restart."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import BROWSER_MARKS, CHROMIUM, FLAGS
from tests.support.stack import REPO, Project, init_project, kill_leftovers, processes_under, wait_for

pytestmark = BROWSER_MARKS

H1_COLOR = "getComputedStyle(document.querySelector('h1')).color"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "blueprints"
    shutil.copytree(
        REPO / "examples" / "blueprints",
        root,
        ignore=shutil.ignore_patterns(".devstack", "__pycache__", "devstack.toml"),
    )
    project, _ = init_project(root)
    project.up_detached()
    yield project
    project.down()
    left = processes_under(project.root)
    killed = kill_leftovers(project.root)
    assert not left, f"processes left behind: {killed}"


@pytest.fixture
def page(shop: Project) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            tab = browser.new_context().new_page()
            tab.goto(shop.url + "/chat/")
            tab.wait_for_function("window.__devstackTab > 0")
            yield tab
        finally:
            browser.close()


def watcher_log(project: Project) -> str:
    path = project.state_dir / "logs" / "watcher.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_blueprint_css_in_place_and_template_edit_reloads_the_tab(shop: Project, page: Any) -> None:
    page.evaluate("window.marker = 'kept'")
    css = shop.root / "shop/chat/static/chat.css"
    css.write_text(css.read_text() + "h1 { color: rgb(255, 0, 0); }\n")
    page.wait_for_function(f"{H1_COLOR} === 'rgb(255, 0, 0)'", timeout=8000)
    assert page.evaluate("window.marker") == "kept"  # swapped in place: the same document
    assert wait_for(lambda: "fresh  chat/static/chat.css" in watcher_log(shop), 8), watcher_log(shop)

    room = shop.root / "shop/chat/templates/chat/room.html"
    room.write_text(room.read_text().replace("<h1>Chat room</h1>", "<h1>Chat room, edited</h1>"))
    page.wait_for_function("document.querySelector('h1').textContent === 'Chat room, edited'", timeout=10000)
    assert page.evaluate("window.marker") is None  # a new document: the tab reloaded
    assert wait_for(lambda: "reloaded 1 tab" in watcher_log(shop), 8), watcher_log(shop)
    assert re.search(r"reload  room\.html  new code serves \d+ ms after the save", watcher_log(shop))
