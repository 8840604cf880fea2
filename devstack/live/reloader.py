"""Live reload put together for a stack: the hub, its server, and the taps into the watchers
and the supervisor's log lines."""

from __future__ import annotations

from pathlib import Path

from devstack.live.hub import Hub
from devstack.live.server import LiveServer
from devstack.logs.sink import Sink

# The supervisor's line when gunicorn cannot import the app (procs/supervisor.py): its cause is
# the one line the tabs show.
BOOT_FAILURE = "gunicorn stopped: "


class LiveReload:
    """A service (start/stop) for the supervisor; the watchers call its hooks."""

    def __init__(self, state_dir: Path, public_url: str, static_prefix: str, sink: Sink) -> None:
        self.sink = sink
        self.static_prefix = static_prefix
        self.hub = Hub(lambda line: sink.note("watcher", line), public_url)
        self.server = LiveServer(state_dir, self.hub, public_url, self._worker_ready)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def retarget(self, public_url: str, static_prefix: str) -> None:
        """devstack.toml moved the public port or the static prefix."""
        self.hub.public_url = self.server.public_url = public_url
        self.static_prefix = static_prefix

    # -- hooks -------------------------------------------------------------------------------------
    def static_changed(self, rel: str, seen: float) -> int | None:
        return self.hub.static_changed(rel, self.static_prefix + rel, seen)

    def static_verified(self, handle: int, disk_sha: str, line: str | None) -> None:
        self.hub.static_verified(handle, disk_sha, line)

    def code_changed(self, why: str) -> None:
        self.hub.code_changed(why)

    def _worker_ready(self) -> None:
        self.hub.worker_ready(self.server.status_of)

    def tap(self, sink: Sink) -> Sink:
        return _Tap(sink, self)


class _Tap:
    """The stack's sink, passed through; gunicorn's boot failure also goes to the tabs."""

    def __init__(self, inner: Sink, live: LiveReload) -> None:
        self.inner = inner
        self.live = live

    def feed(self, source: str, stream: str, data: bytes) -> None:
        self.inner.feed(source, stream, data)

    def end(self, source: str, stream: str) -> None:
        self.inner.end(source, stream)

    def note(self, source: str, message: str) -> None:
        self.inner.note(source, message)
        if source == "gunicorn" and message.startswith(BOOT_FAILURE):
            # "gunicorn stopped: Worker failed to boot — NameError: … . nginx stays up; …"
            text = message[len(BOOT_FAILURE) :].split(". nginx stays up", 1)[0]
            self.live.hub.boot_failed(text)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:  # hold(), release(), flush() of the LogMux
        return getattr(self.inner, name)
