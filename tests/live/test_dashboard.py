"""The dashboard at /__devstack/ in real Chromium against a real stack: it lists the processes,
restarts one, shows a static edit with its tab's proof and a broken edit's failure, runs doctor;
the CLI's actions do the same; forged requests restart nothing."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.live import query
from devstack.stack import probes
from tests.support.browser import BROWSER_MARKS, CHROMIUM, FLAGS
from tests.support.stack import Project, wait_for

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_dashboard(browser: Any, project: Project) -> Any:
    page = browser.new_page()
    page.goto(project.url + "/__devstack/")
    page.wait_for_function("() => window.__devstackDash && window.__devstackDash.connected")
    return page


def pid_of(page: Any, name: str) -> str:
    return str(page.locator(f'#procs tr[data-name="{name}"] td.pid').inner_text())


def post(url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_page_lists_the_processes_and_restarts_one(stack: Project, browser: Any) -> None:
    up = stack.cli("status")
    assert f"dashboard: {stack.url}/__devstack/" in up.stdout
    page = open_dashboard(browser, stack)
    page.wait_for_selector('#procs tr[data-name="gunicorn"] td.pid')
    recorded = stack.state()["processes"]
    for name in ("gunicorn", "nginx"):
        assert pid_of(page, name) == str(recorded[name]["pid"])
    assert page.locator("#status").inner_text() == "ready"
    assert page.locator("#sum-procs").inner_text() == "all 2 processes up"
    # The dashboard is devstack's page, not the app's: the live-reload script is not in it.
    answer = probes.http_get(stack.url + "/__devstack/")
    assert b"live.js" not in answer.body
    assert "frame-ancestors 'none'" in (answer.header("content-security-policy") or "")
    old = pid_of(page, "nginx")
    page.click('#procs tr[data-name="nginx"] button.restart')
    assert wait_for(lambda: pid_of(page, "nginx") not in (old, "-"), 10), "nginx's PID did not change"
    assert wait_for(lambda: stack.state()["processes"]["nginx"]["pid"] != int(old), 5)
    # The merged log (following: its newest rows are on screen) says why.
    page.wait_for_function(
        "(t) => document.querySelector('#log-rows').textContent.includes(t)",
        arg="restarting (asked from the dashboard",
    )
    assert "restarting (asked from the dashboard" in (stack.state_dir / "logs" / "nginx.log").read_text()
    # The search keeps only matching lines; a process's toggle hides its lines.
    rows = "#log-rows .row"
    page.fill("#search", "restarting (asked")
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length === 1", arg=rows)
    page.fill("#search", "")
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length > 3", arg=rows)
    assert page.locator(rows, has_text="nginx.access").count() > 0
    page.uncheck('#sources input[data-source="nginx.access"]')
    page.wait_for_function(
        "(sel) => ![...document.querySelectorAll(sel)].some((r) => r.textContent.startsWith('nginx.access'))",
        arg=rows,
    )
    page.check('#sources input[data-source="nginx.access"]')
    # Doctor, on demand (from the keyboard): its summary and findings arrive over the WebSocket.
    page.focus("#doctor-run")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(re) => new RegExp(re).test(document.getElementById('doctor-state').textContent)",
        arg=r"\d+ errors?, \d+ warnings?, \d+ ok",
    )
    assert page.locator("#sum-doctor").inner_text().startswith("doctor: ")
    assert "running" not in page.locator("#sum-doctor").inner_text()


def test_a_static_edit_shows_in_the_feed_with_its_tab_proof(stack: Project, browser: Any) -> None:
    app_tab = browser.new_page()
    app_tab.goto(stack.url + "/")
    app_tab.wait_for_function("() => window.__devstackTab > 0")
    page = open_dashboard(browser, stack)
    page.wait_for_function("() => document.querySelector('#tabs tbody').textContent.includes('/')")
    css = stack.root / "static" / "css" / "app.css"
    css.write_text(css.read_text() + "\nh1 { letter-spacing: 1px; }\n")
    row = page.locator('#feed li[data-verdict="fresh"]', has_text="css/app.css").first
    row.wait_for(timeout=15000)
    text = row.inner_text()
    assert "applied in 1 tab" in text and "✓" in text, text
    assert page.locator("#sum-edit").inner_text() == "last edit css/app.css: served fresh"
    sha = probes.sha256_file(css)[:12]
    assert sha in text  # the hash the tab applied is the disk's
    page.wait_for_function(f"() => document.querySelector('#tabs tbody').textContent.includes('{sha}')")


def test_a_broken_edit_shows_the_failure_until_a_fix_serves(stack: Project, browser: Any) -> None:
    page = open_dashboard(browser, stack)
    app = stack.root / "app.py"
    good = app.read_text()
    app.write_text(good + "\nimport no_such_module_devstack\n")
    page.wait_for_selector("#app-error:not([hidden])", timeout=20000)
    assert "no_such_module_devstack" in page.locator("#app-error").inner_text()
    assert page.locator("#reloads li.error").count() >= 1
    state_cell = '#procs tr[data-name="gunicorn"] td:nth-child(2)'
    page.wait_for_function(
        "(cell) => document.querySelector(cell).textContent.startsWith('backoff')", arg=state_cell
    )
    app.write_text(good)
    page.wait_for_selector("#app-error[hidden]", state="attached", timeout=20000)


def test_forged_requests_restart_nothing(stack: Project, browser: Any) -> None:
    before = stack.state()["processes"]["nginx"]["pid"]
    api = stack.url + "/__devstack/api/restart"
    html = probes.http_get(stack.url + "/__devstack/").body.decode()
    match = re.search(r'name="devstack-token" content="([^"]+)"', html)
    assert match is not None
    token = match.group(1)
    # Another site's page: its Origin is not the stack's, even with the token.
    status, body = post(api, {"Origin": "http://evil.example", "X-Devstack-Token": token}, {"name": "nginx"})
    assert status == 403 and "origin" in body
    # The stack's own origin without the token (a page that never saw the dashboard).
    status, body = post(api, {"Origin": stack.url}, {"name": "nginx"})
    assert status == 403 and "token" in body
    status, _ = post(api, {"Origin": stack.url, "X-Devstack-Token": token + "x"}, {"name": "nginx"})
    assert status == 403
    # A cross-origin page in Chromium (localhost is another origin than 127.0.0.1) posting blind.
    evil = browser.new_page()
    evil.goto(f"http://localhost:{stack.public_port}/")
    evil.evaluate(
        """(url) => fetch(url, {method: 'POST', mode: 'no-cors', credentials: 'include',
             headers: {'Content-Type': 'text/plain'}, body: '{"name":"nginx"}'}).catch(() => null)""",
        api.replace("localhost", "127.0.0.1"),
    )
    # A DNS-rebound name (another site's name resolving to 127.0.0.1) gets neither the page
    # (its token, its logs) nor an action; the same page on 127.0.0.1 answers.
    # nginx's Host allow-list closes such a connection unanswered (444) before the dashboard.
    rebound = {"Host": f"evil.example:{stack.public_port}"}
    with pytest.raises(OSError, match="without response"):
        probes.http_get(stack.url + "/__devstack/", headers=rebound)
    with pytest.raises(OSError, match="without response"):
        probes.http_get(stack.url + "/__devstack/dash.js", headers=rebound)
    rebound_origin = {
        **rebound,
        "Origin": f"http://evil.example:{stack.public_port}",
        "X-Devstack-Token": token,
    }
    with pytest.raises(OSError):
        post(api, rebound_origin, {"name": "nginx"})
    assert probes.http_get(f"http://localhost:{stack.public_port}/__devstack/").status == 200
    # The internal route (the CLI's) is not reachable through nginx.
    status, _ = post(stack.url + "/__devstack/internal/restart", {"Origin": stack.url}, {"name": "nginx"})
    assert status == 404
    # A WebSocket from another origin is refused before any upgrade.
    sock, ws_status, _ = probes.WebSocket.connect(
        "127.0.0.1", stack.public_port, "/__devstack/ws", headers={"Origin": "http://evil.example"}
    )
    assert sock is None and ws_status == 403
    assert stack.state()["processes"]["nginx"]["pid"] == before
    notes = stack.state_dir / "logs" / "nginx.log"  # devstack's lines about nginx, if any
    assert not notes.exists() or "asked from the dashboard" not in notes.read_text()
    # The real one, with both: accepted (the refusals above were not a broken route).
    status, _ = post(api, {"Origin": stack.url, "X-Devstack-Token": token}, {"name": "nginx"})
    assert status == 202
    assert wait_for(lambda: stack.state()["processes"]["nginx"]["pid"] != before, 10)


def test_the_cli_restarts_and_clears_like_the_page(project: Project) -> None:
    for args in (("restart", "nginx"), ("clear-stale",), ("open", "--no-browser")):
        idle = project.cli(*args)  # no stack yet: one line saying how to start one
        assert idle.returncode == 2 and idle.stderr.count("\n") == 1, idle.stderr
        assert "no stack is running here" in idle.stderr
    up = project.up_detached()
    assert f"dashboard: {project.url}/__devstack/" in up.stderr
    stack = project
    before = stack.state()["processes"]["gunicorn"]["pid"]
    result = stack.cli("restart", "gunicorn")
    assert result.returncode == 0, result.stderr
    assert wait_for(lambda: stack.state()["processes"]["gunicorn"]["pid"] != before, 15)
    wrong = stack.cli("restart", "nope")
    assert wrong.returncode == 2 and "no process named 'nope'" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    cleared = stack.cli("clear-stale")
    assert cleared.returncode == 0 and "cleared 0 STALE rows" in cleared.stdout
    opened = stack.cli("open", "--no-browser")
    assert opened.stdout.strip() == f"dashboard: {stack.url}/__devstack/"
    # The VM's way (the guest's socket is out of reach): through the public URL, as the page.
    nginx = stack.state()["processes"]["nginx"]["pid"]
    status, answer = query.post_public(stack.url, "restart", {"name": "nginx"})
    assert status == 202 and answer == {"ok": True}
    assert wait_for(lambda: stack.state()["processes"]["nginx"]["pid"] != nginx, 10)


def test_a_stale_row_stays_with_its_cause_until_cleared(project: Project, browser: Any) -> None:
    from tests.live.test_live_browser import EXTRA_ROUTES  # /sw.js: a worker pinning stylesheets

    app = project.root / "app.py"
    app.write_text(app.read_text() + EXTRA_ROUTES)
    project.up_detached()
    tab = browser.new_context().new_page()  # its own context: the worker controls only this one
    tab.goto(project.url + "/")
    tab.wait_for_function("() => window.__devstackTab > 0")
    tab.evaluate("() => navigator.serviceWorker.register('/sw.js')")
    tab.wait_for_function("() => !!navigator.serviceWorker.controller", timeout=10000)
    tab.evaluate("() => fetch('/static/css/app.css').then((r) => r.text())")  # the copy it keeps
    page = open_dashboard(browser, project)
    css = project.root / "static" / "css" / "app.css"
    css.write_text(css.read_text() + "\nh1 { letter-spacing: 2px; }\n")
    row = page.locator('#feed li.open[data-verdict="stale"]', has_text="css/app.css").first
    row.wait_for(timeout=15000)
    assert "a service worker controls the page" in row.inner_text()
    assert page.locator("#stale-count").inner_text() == "1 STALE"
    assert page.locator("#sum-edit").inner_text() == "last edit css/app.css: STALE"
    time.sleep(1.5)  # later messages (process samples, the fresh line) leave it open
    assert page.locator("#feed li.open").count() == 1
    row.locator("button.clear").click()
    page.wait_for_selector("#feed li.open", state="detached", timeout=5000)
    assert page.locator("#stale-count").is_hidden()


def test_the_last_failure_of_up_is_shown_until_the_stack_is_ready(project: Project, browser: Any) -> None:
    app = project.root / "app.py"
    good = app.read_text()
    app.write_text(good + "\nimport no_such_module_at_up\n")
    result = project.cli("up", "--detach")  # waits for a fix: nginx and the dashboard run
    assert result.returncode == 0 and "waiting for a fix" in result.stderr, result.stderr
    page = open_dashboard(browser, project)
    page.wait_for_selector("#up-error:not([hidden])", timeout=10000)
    assert "no_such_module_at_up" in page.locator("#up-error").inner_text()
    assert page.locator("#status").inner_text() == "waiting"
    app.write_text(good)
    page.wait_for_selector("#up-error[hidden]", state="attached", timeout=30000)
    page.wait_for_function("() => document.getElementById('status').textContent === 'ready'")
