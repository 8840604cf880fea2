"""Live reload put together for a stack: the hub, its server, its hooks for the watchers (the
supervisor's log lines reach it through live/tap.py)."""

from __future__ import annotations

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

    def __init__(self, state_dir: Path, public_url: str, static_prefix: str, sink: Sink) -> None:
        self.sink = sink
        self.static_prefix = static_prefix
        self.hub = Hub(lambda line: sink.note("watcher", line), public_url)
        self.server = LiveServer(state_dir, self.hub, public_url, self._worker_ready)
        self.dashboard: Dashboard | None = None

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
        self.hub.code_changed(why)

    def _worker_ready(self) -> None:
        self.hub.worker_ready(self.server.status_of)


class PrefixedLive:
    """A blueprint's static folder: the same hub, files at another URL prefix."""

    def __init__(self, live: LiveReload, prefix: str) -> None:
        self.live, self.prefix = live, prefix

    def static_changed(self, rel: str, seen: float) -> int | None:
        return self.live.hub.static_changed(rel, self.prefix + rel, seen)

    def static_verified(self, handle: int, disk_sha: str, line: str | None) -> None:
        self.live.hub.static_verified(handle, disk_sha, line)
