"""Readiness, for every backend: GET / answered -> static bytes identical to disk -> Socket.IO
over WebSocket, all through one public URL (nginx locally, the forwarded port for a VM).

The backend says where to look (`Target`) and how to tell that waiting is pointless
(`failed()`: gunicorn exited, the guest's unit died); the proof itself is written once, here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.errors import NotReady
from devstack.stack import probes

if TYPE_CHECKING:
    from devstack.stack import nodes
from devstack.system import ports


@dataclass
class ReadyReport:
    ok: bool
    seconds: float
    steps: list[str] = field(default_factory=list)
    error: str = ""
    # failed() ended the wait. Locally that is gunicorn unable to start the app: a save may fix it.
    app_broken: bool = False


@dataclass(frozen=True)
class Target:
    url: str  # the public base URL, no trailing slash
    via: str  # what the requests pass through, for the steps: "nginx", "the forward"
    static_dir: Path
    static_prefix: str
    app_port: int | None = None  # wait for the app's own port first (nginx would log a 502 per try)
    request_timeout: float = 2.0
    # Between tries of GET /. Each 502 costs the server a log line too: a VM guest under
    # emulation, booting the app on one slow CPU, is asked less often.
    pause: float = 0.05
    # A static mismatch is re-checked this long before it fails readiness (a share may lag).
    static_patience: float = 0.0
    socketio_timeout: float = 5.0
    # The blueprints' static folders ([[static.extra]]): (folder, URL prefix), each proven too.
    more_static: tuple[tuple[Path, str], ...] = ()
    # The app's source names flask_socketio. When it does not, a 400 to the probe is the app's
    # own answer too (werkzeug refuses a websocket request to a plain route, e.g. a catch-all
    # static route at the site root), like a 404.
    socketio: bool = True
    # app.nodes > 1: (node, process name, app port) of each; the queue's URL, the variable the
    # app reads it from, and the app's interpreter (python-socketio's RedisManager publishes).
    nodes: tuple[tuple[int, str, int], ...] = ()
    queue_url: str = ""
    queue_env: str = "REDIS_URL"
    app_python: str = ""


def wait_ready(
    target: Target, started: float, timeout: float, failed: Callable[[], str] | None = None
) -> ReadyReport:
    """The three proofs in order; the first that cannot pass before started + timeout is the error."""
    deadline = started + timeout
    steps: list[str] = []
    publisher = None
    if target.nodes and target.queue_url and target.socketio:
        from devstack.stack import nodes as nodes_mod

        # python-socketio's RedisManager in the app's python, importing while the nodes boot.
        publisher = nodes_mod.Publisher(target.app_python, target.queue_url)
    try:
        return _wait_ready(target, started, deadline, timeout, steps, failed, publisher)
    finally:
        if publisher is not None:
            publisher.close()


def _wait_ready(
    target: Target,
    started: float,
    deadline: float,
    timeout: float,
    steps: list[str],
    failed: Callable[[], str] | None,
    publisher: nodes.Publisher | None,
) -> ReadyReport:

    def report(ok: bool, error: str = "", app_broken: bool = False) -> ReadyReport:
        return ReadyReport(ok, time.monotonic() - started, steps, error, app_broken)

    def problem() -> str:
        return failed() if failed is not None else ""

    # Every node's port (app.nodes > 1): a request nginx sends to a node still booting is a 502.
    for port in [target.app_port, *(port for _, _, port in target.nodes[1:])]:
        if port is None:
            continue
        while time.monotonic() < deadline and not problem():
            if ports.wait_port("127.0.0.1", port, 0.2):
                break
    url = target.url
    last = "no answer yet"
    while time.monotonic() < deadline:
        why = problem()
        if why:
            return report(False, why, app_broken=True)
        try:
            resp = probes.http_get(url + "/", timeout=target.request_timeout)
        except OSError as exc:
            last = f"GET {url}/: {exc}"
            time.sleep(min(0.02, target.pause))
            continue
        if probes.app_answered(resp.status):
            took = f"{resp.elapsed * 1000:.0f} ms"
            steps.append(
                f"GET / -> {resp.status} through {target.via} ({took}){probes.why_ready(resp.status)}"
            )
            break
        last = f"GET {url}/ -> {resp.status}"
        time.sleep(target.pause)
    else:
        return report(False, f"not ready after {timeout:.0f} s: {last}")

    sample = probes.sample_static_file(target.static_dir)  # None without a static folder
    if sample is None:
        steps.append("static folder is empty: nothing to compare")
    for folder, prefix in ((target.static_dir, target.static_prefix), *target.more_static):
        sample = probes.sample_static_file(folder)
        if sample is None:
            continue
        until = min(deadline, time.monotonic() + target.static_patience)
        fresh = _static(dataclasses.replace(target, static_dir=folder, static_prefix=prefix), sample, until)
        shown = fresh.relpath if fresh is not None else sample.name
        if folder != target.static_dir:  # a blueprint's: its URL says which folder
            shown = prefix.lstrip("/") + shown
        if fresh is None or not fresh.fresh:
            detail = (
                f"HTTP {fresh.status}, sha256 {fresh.served_sha[:12] or '-'} != disk {fresh.disk_sha[:12]}"
                if fresh is not None
                else "no answer"
            )
            return report(False, f"static {shown} through {target.via}: {detail}")
        steps.append(f"static {shown} byte-identical to disk")

    ok, step = socketio_step(url, target.via, timeout=target.socketio_timeout, expected=target.socketio)
    if not ok:
        return report(False, step)
    steps.append(step)
    if target.nodes:
        error = nodes_steps(target, steps, deadline, publisher)
        if error:
            return report(False, error)
    return report(True)


def nodes_steps(
    target: Target, steps: list[str], deadline: float, publisher: nodes.Publisher | None = None
) -> str:
    """app.nodes > 1: every node answers through nginx, a polling session stays on its node,
    and an emit published through the queue reaches a client on each node. "" or the error."""
    from devstack.stack import nodes as nodes_mod

    pinned = [nodes_mod.Node(index, name, port) for index, name, port in target.nodes]
    while True:  # the other nodes may still be importing the app: wait for each
        step, error = nodes_mod.answers(target.url, pinned, target.request_timeout)
        if not error or time.monotonic() >= deadline:
            break
        time.sleep(target.pause)
    if error:
        return error
    steps.append(step)
    if not target.socketio:
        return ""
    try:
        sticks, what, _ = nodes_mod.polling_sticks(target.url)
    except (OSError, ValueError) as exc:
        return f"a long-polling session through {target.via}: {exc}"
    if not sticks:
        return f"a long-polling session through {target.via} did not stay on its node: {what}"
    steps.append(what)
    if not target.queue_url:
        return ""
    step, error = nodes_mod.cross_node(
        target.url,
        pinned,
        target.queue_url,
        target.app_python,
        target.queue_env,
        max(deadline, time.monotonic() + 5),
        publisher,
    )
    if error:
        return error
    steps.append(step)
    return ""


def _static(target: Target, sample: Path, until: float) -> probes.Freshness | None:
    """The sample through the public URL, re-checked until it matches or `until` passes."""
    fresh: probes.Freshness | None = None
    while True:
        try:
            fresh = probes.check_static(target.url, target.static_prefix, target.static_dir, sample)
        except OSError:
            fresh = None
        if (fresh is not None and fresh.fresh) or time.monotonic() >= until:
            return fresh
        time.sleep(0.1)


def socketio_step(url: str, via: str, timeout: float, expected: bool = True) -> tuple[bool, str]:
    """The readiness step for Socket.IO over websocket: (passed, what to say)."""
    sio = probes.socketio_websocket(url, timeout=timeout)
    if sio.ok:
        return True, f"Socket.IO over websocket through {via}: connect acked, closed cleanly"
    if sio.status == 404 or (sio.status == 400 and not expected):
        return True, "no Socket.IO endpoint (the app does not use Flask-SocketIO)"
    return False, f"Socket.IO over websocket through {via} failed: {sio.detail}"


def every(seconds: float, check: Callable[[], str]) -> Callable[[], str]:
    """check() at most once per `seconds` ("" in between): for a check that costs a round trip."""
    last = time.monotonic()

    def throttled() -> str:
        nonlocal last
        if time.monotonic() - last < seconds:
            return ""
        last = time.monotonic()
        return check()

    return throttled


def raise_not_ready(report: ReadyReport) -> None:
    raise NotReady(f"the stack did not become ready: {report.error}")
