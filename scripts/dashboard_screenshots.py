"""The dashboard's screenshots in docs/img/ (light and dark), taken from a real stack.

    python scripts/dashboard_screenshots.py [OUT_DIR]

Copies examples/chat to a temporary folder, adds a queue worker that prints a line a second and
a `mailer` that keeps crashing (the crash loop the page highlights), starts the stack detached on
free ports, opens an app tab, saves a stylesheet (a fresh row with the tab's hash), breaks and
fixes app.py (the reload rows), runs doctor from the page, and screenshots it in both color
schemes with Debian's Chromium. The stack is stopped at the end, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.browser import CHROMIUM, FLAGS  # noqa: E402  (Debian's Chromium, as the tests)

PROCFILE = (
    'worker: python -u -c "import time, itertools; '
    "[print('job %d done in 12 ms' % n, flush=True) or time.sleep(1) for n in itertools.count()]\"\n"
)
# An extra process that exits at once, every time: the crash loop the page highlights.
MAILER = """
[processes]
mailer = "python -c \\"import sys; print('SMTP connection refused'); sys.exit(1)\\""
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def devstack(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "img"
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "chat"
        shutil.copytree(REPO / "examples" / "chat", root, ignore=shutil.ignore_patterns(".devstack"))
        config = root / "devstack.toml"
        text = config.read_text().replace('"127.0.0.1:5000"', f'"127.0.0.1:{free_port()}"')
        text = text.replace("app_port = 5001", f"app_port = {free_port()}")
        text += MAILER
        config.write_text(text)
        (root / "Procfile").write_text(PROCFILE)
        up = devstack(root, "up", "--detach", "--timeout", "60")
        if up.returncode != 0:
            print(up.stdout, up.stderr, file=sys.stderr)
            return 1
        url = devstack(root, "open", "--no-browser").stdout.split("dashboard: ", 1)[1].strip()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1300})
                app_tab = context.new_page()
                app_tab.goto(url.replace("/__devstack/", "/"))
                app_tab.wait_for_function("() => window.__devstackTab > 0")
                page = context.new_page()
                page.goto(url)
                page.wait_for_function("() => window.__devstackDash && window.__devstackDash.connected")
                css = root / "static" / "css" / "app.css"
                css.write_text(css.read_text() + "\n/* edited */\n")
                page.locator('#feed li[data-verdict="fresh"]').first.wait_for(timeout=15000)
                app = root / "app.py"
                good = app.read_text()
                app.write_text(good + "\nimport no_such_module\n")
                page.wait_for_selector("#app-error:not([hidden])", timeout=20000)
                app.write_text(good.replace("Hello", "Hello again") if "Hello" in good else good + "\n")
                page.wait_for_selector("#app-error[hidden]", state="attached", timeout=20000)
                page.locator("#reloads li.reload").first.wait_for(timeout=15000)
                page.click("#doctor-run")
                page.wait_for_function(
                    "() => / errors?, /.test(document.querySelector('#doctor-state').textContent)",
                    timeout=90000,
                )
                time.sleep(2.5)  # a couple of process samples: CPU and memory filled in
                for scheme in ("light", "dark"):
                    page.emulate_media(color_scheme=scheme)
                    page.screenshot(path=str(out / f"dashboard-{scheme}.png"), full_page=True)
                    print(out / f"dashboard-{scheme}.png")
                browser.close()
        finally:
            devstack(root, "down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
