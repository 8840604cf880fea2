"""Benchmark: live reload, from the save to what the open tab shows, in one headless Chromium.

    python benchmarks/bench_live.py [--css-edits 60] [--py-edits 15]

1. CSS: save -> the tab's computed style changes (no navigation). devstack's live reload against
   browser-sync 3 (npm `browser-sync`, proxy mode in front of the same kind of stack, its CSS
   injection), once with its defaults (reloadDebounce 500 ms) and once with --reload-debounce 0.
   The tab polls getComputedStyle from just before the save (a MessageChannel loop, the same for
   every tool) and stamps the change with performance.timeOrigin + now(); the save is stamped with
   time.time() right before the write.
2. Python: save app.py -> the reloaded page shows the new output. devstack (the tab reloads when
   the new worker serves) against gunicorn's own `--reload` (reload_engine = "inotify") plus a
   refresh: the best a person can do, refreshing again the moment each page has loaded, until
   the new text shows. Also counted: the refreshes that landed on the old page or an error.
Goals: CSS p50 <= 25 ms and <= half of browser-sync's p50.
browser-sync comes from the npm registry (npm install into ~/.cache/devstack-bench/node once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.browser import CHROMIUM, FLAGS  # noqa: E402
from tests.support.stack import Project, cli_env, free_port, make_project, wait_for  # noqa: E402

NODE_DIR = Path.home() / ".cache" / "devstack-bench" / "node"
POLL = """() => {
  const h1 = document.querySelector('h1');
  const before = getComputedStyle(h1).color;
  window.__changed = 0;
  const ch = new MessageChannel();
  const deadline = performance.now() + 5000;
  ch.port1.onmessage = () => {
    if (getComputedStyle(h1).color !== before) {
      window.__changed = performance.timeOrigin + performance.now();
      return;
    }
    if (performance.now() < deadline) ch.port2.postMessage(0); else window.__changed = -1;
  };
  ch.port2.postMessage(0);
}"""


def browser_sync() -> str:
    found = shutil.which("browser-sync") or str(NODE_DIR / "node_modules" / ".bin" / "browser-sync")
    if not Path(found).exists():
        if shutil.which("npm") is None:
            raise SystemExit("browser-sync is needed: install Node.js and npm")
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        print(f"installing browser-sync into {NODE_DIR} (npm) ...", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), "browser-sync@3"],
            check=True,
            capture_output=True,
        )
    return found


@contextmanager
def stack(base: Path, name: str, server: str = "", app: str = "") -> Iterator[Project]:
    project = make_project(base / name)
    project.write_config(app=app, server=server)
    project.up_detached(timeout=120)
    try:
        yield project
    finally:
        project.down()


@contextmanager
def browser_sync_proxy(target: Project, debounce: int | None) -> Iterator[str]:
    port = free_port()
    argv = [
        browser_sync(),
        "start",
        "--proxy",
        target.url,
        "--port",
        str(port),
        "--listen",
        "127.0.0.1",
        "--files",
        str(target.root / "static" / "css" / "*.css"),
        "--no-open",
        "--no-notify",
        "--no-ui",
        "--no-online",
        "--no-ghost-mode",
    ]
    if debounce is not None:
        argv += ["--reload-debounce", str(debounce)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        def answers() -> bool:
            try:
                with urllib.request.urlopen(url + "/", timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        if not wait_for(answers, 30, 0.2):
            raise SystemExit("browser-sync did not start")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def css_latencies(page: Any, project: Project, url: str, edits: int, settle: float) -> list[float]:
    page.goto(url + "/")
    time.sleep(1.0)  # connected (both tools' clients open a socket after load)
    css = project.root / "static" / "css" / "app.css"
    base = css.read_text().replace("h1 { color: rgb(0, 0, 255); }", "")
    got: list[float] = []
    for n in range(edits + 2):
        page.evaluate(POLL)
        started = time.time()
        css.write_text(base + f"h1 {{ color: rgb({n % 250 + 1}, {n % 3}, 7); }}\n")
        page.wait_for_function("window.__changed !== 0", timeout=10000)
        changed = page.evaluate("window.__changed")
        if changed < 0:
            raise SystemExit(f"{url}: the style did not change within 5 s (edit {n})")
        if n >= 2:  # the first two warm up both sides
            got.append(changed / 1000 - started)
        time.sleep(settle)
    return got


def py_latencies(page: Any, project: Project, edits: int, refresh: bool) -> tuple[list[float], int, int]:
    """(save -> new text shown, refreshes that showed the old page, refreshes that showed an error)."""
    page.goto(project.url + "/")
    time.sleep(1.0)
    app = project.root / "app.py"
    source = app.read_text()
    got: list[float] = []
    stale = errors = 0
    for n in range(edits):
        greeting = f"Greeting {n} {time.time_ns()}"
        started = time.time()
        app.write_text(source.replace('"Hello from devstack"', repr(greeting)))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if refresh:
                try:
                    resp = page.reload()
                except Exception:  # the connection refused: the app is restarting
                    errors += 1
                    continue
                if resp is None or resp.status >= 500:
                    errors += 1
                    continue
            try:
                shown = page.evaluate(
                    "document.querySelector('h1') && document.querySelector('h1').textContent"
                )
            except Exception:  # navigating right now
                time.sleep(0.002)
                continue
            if shown == greeting:
                nav = page.evaluate(
                    "performance.timeOrigin + performance.getEntriesByType('navigation')[0].domInteractive"
                )
                got.append(nav / 1000 - started)
                break
            if refresh:
                stale += 1
            else:
                time.sleep(0.002)
        else:
            raise SystemExit(f"{project.url}: the new greeting never showed (edit {n})")
        time.sleep(0.6)
    return got, stale, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def row(name: str, values: list[float], base: float | None = None, extra: str = "") -> str:
    p50, p99 = pct(values, 0.5), pct(values, 0.99)
    ratio = f"{p50 / base:.2f}x" if base else "1.00x"
    return f"| {name} | {len(values)} | {p50:.1f} | {p99:.1f} | {ratio} | {extra} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--css-edits", type=int, default=60)
    parser.add_argument("--py-edits", type=int, default=15)
    args = parser.parse_args()
    os.environ.update(cli_env())
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, sync_playwright() as pw:
        base = Path(tmp)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_context().new_page()
        with (
            stack(base, "live") as live,
            stack(base, "plain", server="live_reload = false", app='reload_engine = "inotify"') as plain,
        ):
            ours = css_latencies(page, live, live.url, args.css_edits, 0.05)
            with browser_sync_proxy(plain, 0) as bs_url:
                bs0 = css_latencies(page, plain, bs_url, args.css_edits, 0.05)
            with browser_sync_proxy(plain, None) as bs_url:
                bs_default = css_latencies(page, plain, bs_url, max(10, args.css_edits // 3), 0.6)
            py_ours, _, _ = py_latencies(page, live, args.py_edits, refresh=False)
            py_gun, stale, errors = py_latencies(page, plain, args.py_edits, refresh=True)
        browser.close()

    print("\nsave -> new computed style in the tab (CSS, no navigation)\n")
    print("| tool | edits | p50 ms | p99 ms | p50 vs devstack | note |")
    print("|---|---|---|---|---|---|")
    base50 = pct(ours, 0.5)
    print(row("devstack live reload", ours, extra="in place, sha256 of the applied body reported"))
    print(row("browser-sync 3, --reload-debounce 0", bs0, base50, "in place, ?rel= link swap"))
    print(row("browser-sync 3, defaults", bs_default, base50, "reloadDebounce 500 ms"))
    print("\nsave app.py -> the reloaded page shows the new output\n")
    print("| tool | edits | p50 ms | p99 ms | p50 vs devstack | note |")
    print("|---|---|---|---|---|---|")
    py50 = pct(py_ours, 0.5)
    print(row("devstack: reload once the new worker serves", py_ours, extra="no refresh, never a 5xx"))
    print(
        row(
            "gunicorn --reload (inotify) + refresh loop",
            py_gun,
            py50,
            f"{stale} refreshes showed the old page, {errors} an error",
        )
    )
    goal = pct(ours, 0.5) <= 25 and pct(ours, 0.5) <= pct(bs0, 0.5) / 2
    print(f"\nCSS goal (p50 <= 25 ms and <= half of browser-sync's best p50): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
