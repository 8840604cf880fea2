"""Two tabs of a real browser (headless Chromium via Playwright) pinned to different nodes of an
app.nodes = 3 stack: a message typed in one appears in the other, through the message queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends.test_nodes import nodes_project
from tests.support.browser import BROWSER_MARKS, CHROMIUM, FLAGS
from tests.support.require import have, needs
from tests.support.stack import Project, kill_leftovers, processes_under

pytestmark = [
    *BROWSER_MARKS,
    needs(
        have("redis-server", Path("/usr/bin/redis-server")),
        "redis-server is not installed (apt-get install redis-server)",
    ),
]


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Project]:
    project = nodes_project(tmp_path)
    project.up_detached(timeout=90)
    yield project
    project.down()
    killed = kill_leftovers(project.root)
    assert not processes_under(project.root), killed


def test_a_message_typed_in_one_tab_appears_in_a_tab_on_another_node(three: Project) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            tabs: list[Any] = []
            for node in ("1", "2"):
                # Each tab its own cookie jar, holding the cookie nginx routes by: one node each.
                context = browser.new_context()
                context.add_cookies([{"name": "devstack_node", "value": node, "url": three.url + "/"}])
                page = context.new_page()
                page.goto(three.url + "/")
                page.wait_for_selector("body[data-connected='1']", timeout=10000)
                assert page.inner_text("#node") == node
                tabs.append(page)
            one, two = tabs
            one.fill("#text", "hello from tab one")
            one.click("button")
            two.wait_for_selector("#messages li", timeout=10000)
            assert two.inner_text("#messages li") == "hello from tab one (from node 1)"
            # And back, the other way round.
            two.fill("#text", "and back")
            two.click("button")
            back = "[...document.querySelectorAll('#messages li')].some(li => li.textContent === '%s')"
            one.wait_for_function(back % "and back (from node 2)", timeout=10000)
            # Both stayed on their nodes, websocket and all: the cookie nginx routes by is unchanged.
            for page, node in zip(tabs, ("1", "2"), strict=True):
                cookies = {c["name"]: c["value"] for c in page.context.cookies()}
                assert cookies["devstack_node"] == node
                page.wait_for_function("socket.io.engine.transport.name === 'websocket'", timeout=10000)
        finally:
            browser.close()
