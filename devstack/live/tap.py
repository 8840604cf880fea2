"""The stack's log sink, passed through; gunicorn's boot failure also goes to the open tabs.

Made before gunicorn starts (its lines flow through it from the first byte); the live-reload
server is attached once it exists, which is while gunicorn boots (backends/local.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devstack.logs.sink import Sink

if TYPE_CHECKING:
    from devstack.live.reloader import LiveReload

# The supervisor's line when gunicorn cannot import the app (procs/supervisor.py): its cause is
# the one line the tabs show.
BOOT_FAILURE = "gunicorn stopped: "


class BootTap:
    def __init__(self, inner: Sink, live: LiveReload | None = None) -> None:
        self.inner = inner
        self.live = live

    def feed(self, source: str, stream: str, data: bytes) -> None:
        self.inner.feed(source, stream, data)

    def end(self, source: str, stream: str) -> None:
        self.inner.end(source, stream)

    def note(self, source: str, message: str) -> None:
        self.inner.note(source, message)
        live = self.live
        if live is not None and source == "gunicorn" and message.startswith(BOOT_FAILURE):
            # "gunicorn stopped: Worker failed to boot — NameError: … . nginx stays up; …"
            text = message[len(BOOT_FAILURE) :].split(". nginx stays up", 1)[0]
            live.hub.boot_failed(text)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:  # hold(), release(), flush() of the LogMux
        return getattr(self.inner, name)
