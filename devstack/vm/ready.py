"""Readiness from the host, through the forwarded port only (never `vagrant port`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from devstack import probes
from devstack.backends.local import ReadyReport, socketio_step
from devstack.config import Config


def base_url(config: Config) -> str:
    return f"http://127.0.0.1:{config.vm.host_port}"


def wait_ready(config: Config, timeout: float = 90.0, failed: Callable[[], str] | None = None) -> ReadyReport:
    """GET / is 200, a static file's bytes equal the HOST file, Socket.IO over websocket."""
    started = time.monotonic()
    url = base_url(config)
    steps: list[str] = []
    last = "no answer yet"
    checked = started
    while True:
        if failed is not None and time.monotonic() - checked > 3.0:
            checked = time.monotonic()
            problem = failed()
            if problem:
                return ReadyReport(False, time.monotonic() - started, steps, problem)
        try:
            resp = probes.http_get(url + "/", timeout=5.0)
            if probes.app_answered(resp.status):
                took = f"{resp.elapsed * 1000:.0f} ms"
                steps.append(
                    f"GET {url}/ -> {resp.status} through the forward ({took}){probes.why_ready(resp.status)}"
                )
                break
            last = f"GET {url}/ -> {resp.status}"
        except OSError as exc:
            last = f"GET {url}/: {exc}"
        if time.monotonic() - started > timeout:
            return ReadyReport(
                False, time.monotonic() - started, steps, f"not ready after {timeout:.0f} s: {last}"
            )
        time.sleep(0.2)
    sample = probes.sample_static_file(config.static_dir)  # None without a static folder
    if sample is not None:
        fresh = None
        while time.monotonic() - started < timeout:
            fresh = probes.check_static(url, config.static.url, config.static_dir, sample)
            if fresh.fresh:
                break
            time.sleep(0.2)
        if fresh is None or not fresh.fresh:
            detail = (
                (f"HTTP {fresh.status}, sha256 {fresh.served_sha[:12] or '-'} != host {fresh.disk_sha[:12]}")
                if fresh
                else "no answer"
            )
            return ReadyReport(
                False,
                time.monotonic() - started,
                steps,
                f"static {sample.name} through the forward: {detail}",
            )
        steps.append(f"static {fresh.relpath} byte-identical to the host's file")
    ok, step = socketio_step(url, "the forward", timeout=10.0)
    if not ok:
        return ReadyReport(False, time.monotonic() - started, steps, step)
    steps.append(step)
    return ReadyReport(True, time.monotonic() - started, steps)
