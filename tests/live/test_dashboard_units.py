"""The dashboard's pure parts: the feed's verdicts and STALE rows, the log batching under a burst,
the actions' answers. A scripted supervisor; nothing started."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.live.dashboard import MAX_FLUSH_BYTES, Dashboard, classify, reload_ms
from devstack.live.hub import Hub
from devstack.stack.state import StackState

pytestmark = pytest.mark.unit


class FakeState:
    value = "running"


class FakeChild:
    state = FakeState()
    started_at = 0.0
    backoff = 0.0
    retry_at = None
    pid = None
    tail = ("last words",)

    def running(self) -> bool:
        return False


class FakeSupervisor:
    def __init__(self) -> None:
        self.children = {"gunicorn": FakeChild(), "nginx": FakeChild()}
        self.calls: list[Callable[[], None]] = []

    def clock(self) -> float:
        return 10.0

    def call_soon(self, fn: Callable[[], None]) -> None:
        self.calls.append(fn)


def make() -> tuple[Dashboard, FakeSupervisor, list[dict[str, Any]]]:
    supervisor = FakeSupervisor()
    dash = Dashboard(Hub(lambda line: None), supervisor, StackState, Path("devstack.toml"))  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []
    dash.subscribe(sent.append)
    return dash, supervisor, sent


@pytest.mark.parametrize(
    ("line", "verdict", "rel"),
    [
        ("fresh  css/app.css  3 ms · applied in 2 tabs 14 ms", "fresh", "css/app.css"),
        (
            'STALE in browser  css/app.css: tab "Chat" applied 1a2b != disk 9f8e — a service worker',
            "stale",
            "css/app.css",
        ),
        (
            "STALE css/app.css: served 1a2b3c4d5e6f != disk 9f8e7d6c5b4a — nginx's cache",
            "stale",
            "css/app.css",
        ),
        ("fresh?  js/app.js  not verified at the public URL", "stale", "js/app.js"),
        ("reload  app.py  new code serves 60 ms after the save · reloaded 2 tabs 170 ms", "reload", "app.py"),
        ("error shown in 1 tab: Worker failed to boot — NameError", "error", ""),
        ("watching /x/static (inotify): every edit is fetched", "note", ""),
    ],
)
def test_each_watcher_line_has_its_verdict(line: str, verdict: str, rel: str) -> None:
    assert classify(line) == (verdict, rel)


def test_the_reload_time_is_read_from_the_line() -> None:
    assert reload_ms("reload  app.py  new code serves 60 ms after the save") == 60
    assert reload_ms("fresh  css/app.css  3 ms") is None


def note(dash: Dashboard, line: str, source: str = "watcher") -> None:
    dash.on_log(source, "devstack", 1.0, line.encode() + b"\n")
    dash._scan_feed()


def test_a_stale_row_stays_open_until_a_fresh_save_of_that_file() -> None:
    dash, _, sent = make()
    note(dash, "STALE css/app.css: served 1a2b3c4d5e6f != disk 9f8e7d6c5b4a — nginx's cache")
    note(dash, "fresh  css/other.css  2 ms")
    assert [row["file"] for row in dash.open_stale()] == ["css/app.css"]
    note(dash, "fresh  css/app.css  2 ms · applied in 1 tab 9 ms")
    assert dash.open_stale() == []
    stale_id = dash.feed[0]["id"]
    assert sent[-1]["t"] == "feed" and stale_id in sent[-1]["resolved"]


def test_clear_stale_ends_the_open_rows_of_one_file_or_all() -> None:
    dash, _, _ = make()
    note(dash, "STALE a.css: served 1 != disk 2 — x")
    note(dash, "STALE b.css: served 1 != disk 2 — x")
    assert dash.clear_stale("a.css") == 1
    assert [row["file"] for row in dash.open_stale()] == ["b.css"]
    assert dash.clear_stale() == 1 and dash.open_stale() == []


def test_the_hub_proofs_are_attached_to_their_line() -> None:
    dash, _, _ = make()
    line = "fresh  css/app.css  3 ms · applied in 1 tab 9 ms"
    proof = {"tab": '"Chat"', "status": "applied", "sha": "abc", "ok": True, "ms": 9}
    dash.hub._tell({"t": "edit", "line": line, "tabs": [proof]})
    note(dash, line)
    assert dash.feed[-1]["tabs"] == [proof]


def test_a_boot_failure_is_a_feed_row_other_gunicorn_lines_are_not() -> None:
    dash, _, _ = make()
    note(dash, "reloading (app.py)", source="gunicorn")
    note(dash, "gunicorn stopped: Worker failed to boot — NameError: x", source="gunicorn")
    assert [(row["verdict"], row["file"]) for row in dash.feed] == [("error", "app")]


def test_a_burst_is_sent_as_its_newest_lines_and_a_count_of_the_rest() -> None:
    dash, _, sent = make()
    block = b"".join(b"line %06d of the burst\n" % n for n in range(1000))  # ~25 KB
    for _ in range(400):  # ~10 MB, 400k lines, between two flushes
        dash.on_log("app", "stdout", 2.0, block)
    assert dash._pending_bytes <= 4 * MAX_FLUSH_BYTES + len(block)
    dash._flush_logs()
    message = sent[-1]
    assert message["t"] == "logs"
    shown = sum(row[4].count("\n") for row in message["rows"])
    assert shown + message["skipped"] == 400_000
    assert message["skipped"] > 0 and shown * 25 <= 2 * MAX_FLUSH_BYTES
    assert message["rows"][-1][4].endswith("line 000999 of the burst\n")


def test_nothing_queues_for_logs_while_no_dashboard_is_open() -> None:
    supervisor = FakeSupervisor()
    dash = Dashboard(Hub(lambda line: None), supervisor, StackState, Path("devstack.toml"))  # type: ignore[arg-type]
    for _ in range(1000):
        dash.on_log("app", "stdout", 1.0, b"x\n")
    assert dash._pending == [] and len(dash._backlog) <= dash._backlog.maxlen  # type: ignore[operator]


def test_restart_names_the_processes_that_exist() -> None:
    dash, supervisor, _ = make()
    assert dash.restart("nope") == "no process named 'nope' (these run: gunicorn, nginx)"
    assert supervisor.calls == []
    assert dash.restart("nginx") == ""
    assert len(supervisor.calls) == 1 and dash.manual_restarts == {"nginx": 1}
