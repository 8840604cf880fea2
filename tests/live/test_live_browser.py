"""Live reload in a real browser (headless Chromium via Playwright) against a real stack: CSS
applied in place in every tab, reloads only onto code that serves, and the watcher's proof."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.live.query import tabs_report
from devstack.stack import probes
from tests.support.browser import BROWSER_MARKS, CHROMIUM, FLAGS
from tests.support.doctor import doctor, finding
from tests.support.stack import Project, wait_for

pytestmark = BROWSER_MARKS

H1_COLOR = "getComputedStyle(document.querySelector('h1')).color"
NAV_COUNT = "performance.getEntriesByType('navigation').length"
OLD, NEW = "rgb(0, 0, 255)", "rgb(255, 0, 0)"

# Routes the tests add to their copy of the example app.
EXTRA_ROUTES = '''

@app.route("/csp-none")
def csp_none():  # type: ignore[no-untyped-def]
    page = "<!doctype html><title>strict</title><body><h1>strict</h1></body>"
    return page, 200, {"Content-Security-Policy": "default-src 'none'"}


@app.route("/csp-none-too")
def csp_none_too():  # type: ignore[no-untyped-def]
    page = "<!doctype html><title>strict too</title><body><h1>strict too</h1></body>"
    return page, 200, {"Content-Security-Policy": "default-src 'none'"}


@app.route("/csp-self")
def csp_self():  # type: ignore[no-untyped-def]
    page = "<!doctype html><title>self</title><body><h1>self</h1></body>"
    return page, 200, {"Content-Security-Policy": "default-src 'self'"}


@app.route("/gz")
def gz():  # type: ignore[no-untyped-def]
    # Compresses whenever the client accepts it, as Flask-Compress would.
    import gzip

    from flask import request

    page = b"<!doctype html><title>gz</title><body><h1>gz</h1></body>"
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return gzip.compress(page), 200, {"Content-Encoding": "gzip", "Content-Type": "text/html"}
    return page, 200, {"Content-Type": "text/html"}


@app.route("/sw.js")
def service_worker():  # type: ignore[no-untyped-def]
    # Keeps the first copy of every stylesheet and answers with it, query string or not.
    body = """
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  const u = new URL(e.request.url);
  if (!u.pathname.endsWith(".css")) return;
  e.respondWith(caches.open("pin").then(async (c) => {
    const hit = await c.match(u.pathname);
    if (hit) return hit;
    const r = await fetch(u.pathname);
    await c.put(u.pathname, r.clone());
    return r;
  }));
});
"""
    return body, 200, {"Content-Type": "application/javascript"}
'''


@pytest.fixture
def live(project: Project) -> Iterator[Project]:
    app = project.root / "app.py"
    app.write_text(app.read_text() + EXTRA_ROUTES)
    project.up_detached()
    yield project


@pytest.fixture
def context() -> Iterator[Any]:
    """One browser context: its tabs share one HTTP cache, as a user's tabs do."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser.new_context()
        finally:
            browser.close()


def watcher_log(project: Project) -> str:
    path = project.state_dir / "logs" / "watcher.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def open_tab(context: Any, url: str) -> Any:
    page = context.new_page()
    page.goto(url)
    page.evaluate("window.marker = 'kept'")
    # Connected: the hub greets every tab with its id.
    page.wait_for_function("window.__devstackTab > 0")
    return page


def wait_connected(project: Project, count: int) -> None:
    """The live server has the tabs (asked over its unix socket, as doctor does)."""

    def tabs() -> int:
        report = tabs_report(project.state_dir)
        return int(report["tabs"]) if report else 0

    assert wait_for(lambda: tabs() >= count, 10), "tabs did not connect"


def browser_rung(project: Project) -> dict[str, Any]:
    _, report = doctor("static.browser", cwd=project.root)
    return finding(report, "static.browser")


def edit_css(project: Project, old: str = OLD, new: str = NEW) -> None:
    css = project.root / "static" / "css" / "app.css"
    text = css.read_text()
    assert old in text
    css.write_text(text.replace(old, new))


def test_css_edit_applies_in_both_tabs_without_navigation(live: Project, context: Any) -> None:
    tabs = [open_tab(context, live.url + "/"), open_tab(context, live.url + "/")]
    wait_connected(live, 2)
    first = tabs[0]
    first.fill("#input", "half-typed message")
    first.evaluate("document.body.style.height = '4000px'; window.scrollTo(0, 1234)")
    edit_css(live)
    for tab in tabs:
        tab.wait_for_function(f"{H1_COLOR} === {NEW!r}", timeout=5000)
        assert tab.evaluate("window.marker") == "kept"  # the same document: no navigation
        assert tab.evaluate(NAV_COUNT) == 1
    assert first.input_value("#input") == "half-typed message"
    assert first.evaluate("window.scrollY") == 1234
    assert wait_for(lambda: "applied in" in watcher_log(live), 5), watcher_log(live)
    assert re.search(r"fresh  css/app\.css  \d+ ms · applied in 2 tabs \d+ ms", watcher_log(live)), (
        watcher_log(live)
    )
    assert "STALE" not in watcher_log(live)
    rung = browser_rung(live)  # doctor asks the tabs what they apply now
    assert rung["status"] == "ok" and rung["finding"].startswith("2 tab(s): every stylesheet"), rung


def test_css_saved_beside_then_renamed_is_applied_in_place(live: Project, context: Any) -> None:
    """How devstack's VM sync (and many editors) save: a hidden temp file beside, then a rename.
    The temp file is no edit of its own: the tab must not reload for it."""
    tab = open_tab(context, live.url + "/")
    wait_connected(live, 1)
    css = live.root / "static" / "css" / "app.css"
    tmp = css.with_name(f".{css.name}.devstack-sync")
    tmp.write_text(css.read_text().replace(OLD, NEW))
    os.replace(tmp, css)
    tab.wait_for_function(f"{H1_COLOR} === {NEW!r}", timeout=5000)
    assert tab.evaluate("window.marker") == "kept"  # applied in place, never reloaded
    assert wait_for(lambda: "applied in 1 tab" in watcher_log(live), 5), watcher_log(live)
    assert "devstack-sync" not in watcher_log(live)


def test_imported_stylesheet_and_its_image_are_swapped_in_place(live: Project, context: Any) -> None:
    static = live.root / "static"
    (static / "css" / "base.css").write_text("h1 { background-image: url(../img/dot.svg); }\n")
    (static / "img").mkdir()
    (static / "img" / "dot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    app_css = static / "css" / "app.css"
    app_css.write_text('@import url("base.css");\n' + app_css.read_text())
    assert wait_for(lambda: "fresh  css/app.css" in watcher_log(live), 5)
    tab = open_tab(context, live.url + "/")
    wait_connected(live, 1)
    (static / "css" / "base.css").write_text(
        "h1 { background-image: url(../img/dot.svg); background-color: rgb(0, 128, 0); }\n"
    )
    background = "getComputedStyle(document.querySelector('h1')).backgroundColor"
    tab.wait_for_function(f"{background} === 'rgb(0, 128, 0)'", timeout=5000)
    assert wait_for(
        lambda: "fresh  css/base.css" in watcher_log(live) and "applied in 1 tab" in watcher_log(live)
    )
    (static / "img" / "dot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1"/>\n')
    assert wait_for(lambda: "re-fetched in 1 tab" in watcher_log(live), 5), watcher_log(live)
    image = tab.evaluate("getComputedStyle(document.querySelector('h1')).backgroundImage")
    assert "dot.svg?__devstack=" in image
    assert tab.evaluate("window.marker") == "kept"
    assert "STALE" not in watcher_log(live)


def test_js_edit_reloads_every_tab(live: Project, context: Any) -> None:
    tabs = [open_tab(context, live.url + "/"), open_tab(context, live.url + "/")]
    wait_connected(live, 2)
    js = live.root / "static" / "js" / "app.js"
    js.write_text(js.read_text() + "\nwindow.edited = 1;\n")
    for tab in tabs:
        tab.wait_for_function("window.edited === 1", timeout=8000)
        assert tab.evaluate("window.marker") is None  # a new document
    assert wait_for(lambda: "reloaded 2 tabs" in watcher_log(live), 8), watcher_log(live)
    assert re.search(r"fresh  js/app\.js  \d+ ms · reloaded 2 tabs", watcher_log(live))


def test_python_edit_reloads_only_once_the_new_code_serves(live: Project, context: Any) -> None:
    tabs = [open_tab(context, live.url + "/"), open_tab(context, live.url + "/")]
    wait_connected(live, 2)
    seen: list[tuple[int, str]] = []
    for tab in tabs:
        tab.on("response", lambda resp: seen.append((resp.status, resp.url)))
    app = live.root / "app.py"
    app.write_text(app.read_text().replace('"Hello from devstack"', '"Hello, new code"'))
    for tab in tabs:
        tab.wait_for_function("document.querySelector('h1').textContent === 'Hello, new code'", timeout=10000)
    assert wait_for(lambda: "reloaded 2 tabs" in watcher_log(live), 8), watcher_log(live)
    assert re.search(
        r"reload  app\.py  new code serves \d+ ms after the save · reloaded 2 tabs", watcher_log(live)
    )
    assert [s for s in seen if s[0] >= 500] == []  # never a 502 from nginx, never an error page
    assert any(url.rstrip("/") == live.url and status == 200 for status, url in seen)


def test_import_error_shows_an_overlay_and_the_fix_reloads(live: Project, context: Any) -> None:
    tab = open_tab(context, live.url + "/")
    wait_connected(live, 1)
    app = live.root / "app.py"
    good = app.read_text()
    app.write_text(good.replace('GREETING = "Hello from devstack"', "GREETING = undefined_name"))
    tab.wait_for_function("!!document.getElementById('__devstack_overlay')", timeout=15000)
    text = tab.evaluate("document.getElementById('__devstack_overlay').shadowRoot.textContent")
    assert "NameError: name 'undefined_name' is not defined" in text
    assert tab.evaluate("window.marker") == "kept"  # the tab stays on its page: no 502
    assert "error shown in 1 tab: Worker failed to boot — NameError" in watcher_log(live)
    app.write_text(good.replace('"Hello from devstack"', '"Fixed"'))
    tab.wait_for_function("document.querySelector('h1').textContent === 'Fixed'", timeout=15000)
    assert not tab.evaluate("!!document.getElementById('__devstack_overlay')")


def test_a_service_worker_pinning_css_is_reported_stale(live: Project, context: Any) -> None:
    tab = open_tab(context, live.url + "/")
    tab.evaluate("navigator.serviceWorker.register('/sw.js')")
    tab.wait_for_function("!!navigator.serviceWorker.controller", timeout=10000)
    tab.evaluate("fetch('/static/css/app.css').then((r) => r.text())")  # the worker keeps this copy
    wait_connected(live, 1)
    edit_css(live)
    assert wait_for(lambda: "STALE in browser" in watcher_log(live), 5), watcher_log(live)
    line = next(ln for ln in watcher_log(live).splitlines() if "STALE in browser" in ln)
    disk = probes.sha256_file(live.root / "static" / "css" / "app.css")
    assert 'css/app.css: tab "devstack chat" applied ' in line and f"!= disk {disk[:12]}" in line, line
    assert "a service worker controls the page" in line
    rung = browser_rung(live)
    assert rung["status"] == "error" and f"!= disk {disk[:12]}" in rung["finding"], rung


def test_csp_pages_get_no_script_and_one_note(live: Project, context: Any) -> None:
    strict = probes.http_get(live.url + "/csp-none")
    assert b"__devstack" not in strict.body
    page = context.new_page()
    for _ in range(2):
        page.goto(live.url + "/csp-none")
    note = "live reload: not injected into /csp-none: its Content-Security-Policy blocks"
    # nginx logs each request as it completes, one datagram the live server reads in order:
    # once the next page's note is in, a second note for /csp-none (its second visit) would be.
    page.goto(live.url + "/csp-none-too")
    later = "live reload: not injected into /csp-none-too:"
    assert wait_for(lambda: later in watcher_log(live), 5), watcher_log(live)
    assert watcher_log(live).count(note) == 1
    # A policy that allows same-origin scripts gets the script, and it connects.
    assert b"/__devstack/live.js" in probes.http_get(live.url + "/csp-self").body
    page.goto(live.url + "/csp-self")
    page.wait_for_function("window.__devstackLive === true")
    wait_connected(live, 1)


def test_only_html_is_injected_and_socketio_is_untouched(live: Project) -> None:
    health = probes.http_get(live.url + "/health")
    assert health.status == 200 and b"__devstack" not in health.body
    css = probes.http_get(live.url + "/static/css/app.css")
    assert css.body == (live.root / "static/css/app.css").read_bytes()
    polling = probes.http_get(live.url + "/socket.io/?EIO=4&transport=polling")
    assert polling.status == 200 and b"__devstack" not in polling.body
    assert probes.socketio_websocket(live.url, timeout=5).ok
    # An app that compresses still gets the script: nginx asks it for an uncompressed body.
    gz = probes.http_get(live.url + "/gz", headers={"Accept-Encoding": "gzip"})
    assert gz.status == 200 and b'<script src="/__devstack/live.js" async></script></body>' in gz.body
    # The endpoint refuses a WebSocket from another origin.
    sock, status, _ = probes.WebSocket.connect(
        "127.0.0.1", live.public_port, "/__devstack/ws", headers={"Origin": "http://evil.example"}
    )
    assert sock is None and status == 403
    # devstack's internal route is not reachable through nginx.
    assert probes.http_get(live.url + "/__devstack/tabs").status == 404


def test_live_reload_false_injects_nothing(project: Project) -> None:
    project.write_config(server="live_reload = false")
    project.up_detached()
    page = probes.http_get(project.url + "/")
    assert page.status == 200 and b"__devstack" not in page.body
    assert probes.http_get(project.url + "/__devstack/live.js").status == 404  # the app's 404
    assert "__devstack" not in (project.state_dir / "nginx.conf").read_text()
