"""Live reload put together for a stack: the hub, its server, its hooks for the watchers (the
supervisor's log lines reach it through live/tap.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.live.dashboard import Dashboard
from devstack.live.hub import Hub
from devstack.live.server import LiveServer
from devstack.logs.sink import Sink
from devstack.stack.state import StackState

if TYPE_CHECKING:  # the supervisor is in procs/, a sibling layer: typed only, never imported
    from devstack.procs.supervisor import Supervisor


class LiveReload:
    """A service (start/stop) for the supervisor; the watchers call its hooks."""

    def __init__(
        self,
        state_dir: Path,
        public_url: str,
        static_prefix: str,
        sink: Sink,
        nodes: int = 1,
        on_node_ready: Callable[[int], None] | None = None,
    ) -> None:
        self.sink = sink
        self.static_prefix = static_prefix
        self.hub = Hub(lambda line: sink.note("watcher", line), public_url)
        self.server = LiveServer(state_dir, self.hub, public_url, self._worker_ready)
        self.dashboard: Dashboard | None = None
        # app.nodes > 1: a code edit reloads the tabs once every node's new worker serves.
        self.nodes = nodes
        self.on_node_ready = on_node_ready
        self._ready_nodes: set[int] = set()
        self._lock = threading.Lock()
        if nodes > 1:
            self.server.on_ready_text = self._ready_text

    def attach_dashboard(
        self, supervisor: Supervisor[Any], stack_state: Callable[[], StackState], config_path: Path
    ) -> Dashboard:
        """The dashboard at /__devstack/ (live/dashboard.py), fed by the log multiplexer."""
        self.dashboard = Dashboard(self.hub, supervisor, stack_state, config_path)
        listeners = getattr(self.sink, "listeners", None)  # a LogMux; a test's sink may have none
        if isinstance(listeners, list):
            listeners.append(self.dashboard.on_log)
        self.server.dashboard = self.dashboard
        return self.dashboard

    def start(self) -> None:
        if self.dashboard is not None:
            self.dashboard.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        if self.dashboard is not None:
            self.dashboard.stop()

    def retarget(self, public_url: str, static_prefix: str) -> None:
        """devstack.toml moved the public port or the static prefix."""
        self.hub.public_url = self.server.public_url = public_url
        self.static_prefix = static_prefix

    # -- hooks -------------------------------------------------------------------------------------
    def static_changed(self, rel: str, seen: float) -> int | None:
        return self.hub.static_changed(rel, self.static_prefix + rel, seen)

    def static_verified(self, handle: int, disk_sha: str, line: str | None) -> None:
        self.hub.static_verified(handle, disk_sha, line)

    def for_prefix(self, prefix: str) -> LiveReload | PrefixedLive:
        """The hooks for one static folder's watcher: the main one's follows retarget(), a
        blueprint's ([[static.extra]]) keeps its own URL prefix."""
        return self if prefix == self.static_prefix else PrefixedLive(self, prefix)

    def code_changed(self, why: str) -> None:
        with self._lock:
            self._ready_nodes.clear()
        self.hub.code_changed(why)

    def _ready_text(self, text: str) -> None:
        parts = text.split()
        node = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
        with self._lock:
            self._ready_nodes.add(node)
        if self.on_node_ready is not None and node:
            self.on_node_ready(node)

    def _worker_ready(self) -> None:
        if self.nodes > 1:
            with self._lock:
                if len(self._ready_nodes) < self.nodes:
                    return  # an older node still serves the old code: the tabs wait for it
                self._ready_nodes.clear()
        self.hub.worker_ready(self.server.status_of)


class PrefixedLive:
    """A blueprint's static folder: the same hub, files at another URL prefix."""

    def __init__(self, live: LiveReload, prefix: str) -> None:
        self.live, self.prefix = live, prefix

    def static_changed(self, rel: str, seen: float) -> int | None:
        return self.live.hub.static_changed(rel, self.prefix + rel, seen)

    def static_verified(self, handle: int, disk_sha: str, line: str | None) -> None:
        self.live.hub.static_verified(handle, disk_sha, line)
