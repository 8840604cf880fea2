"""Live reload in VM mode, in a real browser: a tab on the host's forwarded port follows host
edits that reach the guest by the sync (CSS in place, a Python edit reloaded once the guest's new
worker serves), and the guest's watcher line carries the tab's proof back to the host's logs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.stack import probes
from tests.support.browser import BROWSER_MARKS, CHROMIUM, FLAGS
from tests.vm.conftest import VMProject

pytestmark = [pytest.mark.vm, *BROWSER_MARKS]

H1_COLOR = "getComputedStyle(document.querySelector('h1')).color"


@pytest.fixture
def tab(vm_project: VMProject) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(_url(vm_project) + "/")
            page.evaluate("window.marker = 'kept'")
            # The hub in the guest greets the tab once it holds it (its WebSocket is through nginx):
            # only then does an edit reach this tab.
            page.wait_for_function("window.__devstackTab > 0", timeout=15000)
            yield page
        finally:
            browser.close()


def _url(project: VMProject) -> str:
    return f"http://127.0.0.1:{project.state()['ports']['public']}"


def _watcher_log(project: VMProject) -> str:
    path = project.state_dir / "logs" / "watcher.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _serves(url: str, text: str) -> bool:
    try:
        return text.encode() in probes.http_get(url, timeout=5).body
    except OSError:
        return False


def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_host_css_edit_is_applied_in_the_tab_without_navigation(vm_project: VMProject, tab: Any) -> None:
    css = vm_project.root / "static" / "css" / "app.css"
    before = tab.evaluate(H1_COLOR)
    new = "rgb(255, 0, 0)" if before != "rgb(255, 0, 0)" else "rgb(0, 128, 0)"
    css.write_text(css.read_text() + f"\nh1 {{ color: {new}; }}\n", encoding="utf-8")
    tab.wait_for_function(f"{H1_COLOR} === {new!r}", timeout=20000)
    assert tab.evaluate("window.marker") == "kept"  # the same document: applied in place
    assert tab.evaluate("performance.getEntriesByType('navigation').length") == 1
    # The guest's watcher proves it with the tab's hash; its line reaches the host's logs.
    assert _until(lambda: "applied in 1 tab" in _watcher_log(vm_project), 20), _watcher_log(vm_project)
    assert re.search(r"fresh  css/app\.css  \d+ ms · applied in 1 tab", _watcher_log(vm_project))
    assert "STALE" not in _watcher_log(vm_project)


def test_host_python_edit_reloads_the_tab_once_new_code_serves(vm_project: VMProject, tab: Any) -> None:
    seen: list[int] = []
    tab.on("response", lambda resp: seen.append(resp.status))
    app = vm_project.root / "app.py"
    text = app.read_text(encoding="utf-8")
    greeting = re.search(r'GREETING = "([^"]*)"', text)
    assert greeting is not None, "the example app names its greeting GREETING"
    new = f"Hello from a live VM edit {time.time_ns()}"
    app.write_text(text.replace(greeting.group(0), f'GREETING = "{new}"'), encoding="utf-8")
    try:
        tab.wait_for_function(f"document.querySelector('h1').textContent === {new!r}", timeout=60000)
        assert tab.evaluate("window.marker") is None  # reloaded: a new document
        assert [status for status in seen if status >= 500] == []  # never a 502 while gunicorn reloaded
        assert _until(lambda: "reloaded 1 tab" in _watcher_log(vm_project), 20), _watcher_log(vm_project)
    finally:
        # The other VM tests expect the example's own greeting: put it back and wait until it serves.
        app.write_text(text, encoding="utf-8")
        assert _until(lambda: _serves(_url(vm_project) + "/health", greeting.group(1)), 60)
