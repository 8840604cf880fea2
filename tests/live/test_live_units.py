"""Live reload's pure parts: the hub's bookkeeping and lines, the origin rule, WebSocket frames."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Pong, Request, TextMessage

from devstack.errors import ConfigError
from devstack.live import hub as hub_mod
from devstack.live import ws
from devstack.live.hub import Hub
from devstack.live.server import loopback_host, same_origin
from devstack.project import config as config_mod
from devstack.stack import livepaths as paths
from devstack.stack import plan as plan_mod
from tests.support.facts import make_facts

pytestmark = pytest.mark.unit

DISK = "a" * 64
OTHER = "b" * 64


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_hub() -> tuple[Hub, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return Hub(lines.append, "http://127.0.0.1:5000", clock=clock), lines, clock


def tab(hub: Hub, title: str = "Chat", **hello: Any) -> tuple[Any, list[dict[str, Any]]]:
    inbox: list[dict[str, Any]] = []
    return hub.connect(inbox.append, {"t": "hello", "title": title, "path": "/", **hello}), inbox


def test_kinds_of_edit() -> None:
    assert hub_mod.kind_of("css/app.css") == "css"
    assert hub_mod.kind_of("img/LOGO.PNG") == "asset"
    assert hub_mod.kind_of("fonts/a.woff2") == "asset"
    assert hub_mod.kind_of("js/app.js") == "reload"
    assert hub_mod.kind_of("page.html") == "reload"


def test_no_tab_leaves_the_line_to_the_watcher() -> None:
    hub, lines, _ = make_hub()
    assert (
        hub.static_fresh("css/app.css", "/static/css/app.css", DISK, "fresh  css/app.css  3 ms", 99.0)
        is False
    )
    assert lines == []


def test_two_tabs_applying_the_disk_bytes_make_one_line() -> None:
    hub, lines, clock = make_hub()
    (a, inbox_a), (b, _) = tab(hub, "A"), tab(hub, "B")
    assert hub.static_fresh("css/app.css", "/static/css/app.css", DISK, "fresh  css/app.css  3 ms", 99.99)
    push = inbox_a[-1]
    assert push["t"] == "css" and push["path"] == "/static/css/app.css"
    clock.now = 100.011
    hub.message(a, {"t": "applied", "id": push["id"], "status": "applied", "sha": DISK, "same": True})
    assert lines == []  # B has not answered yet
    clock.now = 100.021
    hub.message(b, {"t": "applied", "id": push["id"], "status": "applied", "sha": DISK, "same": True})
    assert lines == ["fresh  css/app.css  3 ms · applied in 2 tabs 31 ms"]


def test_a_tab_applying_other_bytes_is_stale_with_its_cause() -> None:
    hub, lines, _ = make_hub()
    (a, inbox), (b, _) = tab(hub, "A"), tab(hub, "B", sw=True)
    hub.static_fresh("css/app.css", "/static/css/app.css", DISK, "fresh  css/app.css  3 ms", 99.99)
    edit = inbox[-1]["id"]
    hub.message(a, {"t": "applied", "id": edit, "status": "applied", "sha": DISK})
    hub.message(b, {"t": "applied", "id": edit, "status": "applied", "sha": OTHER})
    assert lines[0].startswith("fresh  css/app.css  3 ms · applied in 1 tab ")
    assert lines[1].startswith(
        f'STALE in browser  css/app.css: tab "B" applied {OTHER[:12]} != disk {DISK[:12]} — a service worker'
    )


@pytest.mark.parametrize(
    ("msg", "origin", "expected"),
    [
        ({"cached": True, "cacheHeaders": "max-age=2592000"}, "", "from its HTTP cache (max-age=2592000"),
        ({"crossOrigin": "http://cdn.example"}, "", "another origin (http://cdn.example)"),
        ({}, "http://localhost:3000", "the tab is on http://localhost:3000, not devstack's"),
        ({}, "", "no known cause"),
    ],
)
def test_stale_causes(msg: dict[str, Any], origin: str, expected: str) -> None:
    hub, _, _ = make_hub()
    one, _ = tab(hub, origin=origin)
    assert expected in hub_mod.cause(one, msg, "http://127.0.0.1:5000")


def test_same_hash_but_different_rules_is_not_proof() -> None:
    hub, lines, _ = make_hub()
    a, inbox = tab(hub)
    hub.static_fresh("css/app.css", "/static/css/app.css", DISK, "fresh  css/app.css  3 ms", 99.99)
    hub.message(a, {"t": "applied", "id": inbox[-1]["id"], "status": "applied", "sha": DISK, "same": False})
    assert "the stylesheet it applied differs" in lines[1]


def test_unused_and_silent_tabs_are_named() -> None:
    hub, lines, _ = make_hub()
    (a, inbox), (_b, _) = tab(hub, "A"), tab(hub, "B")
    hub.static_fresh("css/other.css", "/static/css/other.css", DISK, "fresh  css/other.css  2 ms", 99.99)
    edit = hub.edits[inbox[-1]["id"]]
    hub.message(a, {"t": "applied", "id": edit.id, "status": "unused"})
    hub._expire(edit)  # the timeout
    assert lines == ["fresh  css/other.css  2 ms · not used by 1 tab, 1 tab did not answer in 2 s"]


def test_a_reload_counts_the_tabs_that_come_back() -> None:
    hub, lines, clock = make_hub()
    a, inbox = tab(hub)
    hub.static_fresh("js/app.js", "/static/js/app.js", DISK, "fresh  js/app.js  2 ms", 99.99)
    push = inbox[-1]
    assert push["t"] == "reload"
    hub.disconnect(a)  # the reload closes the socket: not an answer
    assert lines == []
    clock.now = 100.15
    tab(hub, reloadOf=push["id"], prevTab=a.id, status_code=200)
    assert lines == ["fresh  js/app.js  2 ms · reloaded 1 tab 160 ms"]


def test_code_reload_waits_for_a_page_that_is_not_a_5xx() -> None:
    hub, lines, clock = make_hub()
    a, inbox = tab(hub)
    hub.worker_ready(lambda path: 200)
    assert inbox[-1]["t"] == "hello"  # the first worker: nothing to catch up on
    hub.code_changed("app.py")
    clock.now = 100.08
    hub.worker_ready(lambda path: 500)
    assert inbox[-1] == {"t": "overlay", "text": "GET / answers HTTP 500"}
    hub.code_changed("app.py")
    hub.worker_ready(lambda path: 200)
    assert inbox[-1]["t"] == "reload"
    tab(hub, reloadOf=inbox[-1]["id"], prevTab=a.id, status_code=200)
    assert lines[-1].startswith("reload  app.py  new code serves 0 ms after the save · reloaded 1 tab")


def test_boot_failure_overlays_every_tab_and_new_ones() -> None:
    hub, lines, _ = make_hub()
    _, inbox = tab(hub)
    hub.boot_failed("Worker failed to boot — NameError: name 'x' is not defined")
    assert inbox[-1]["t"] == "overlay" and "NameError" in inbox[-1]["text"]
    assert lines == ["error shown in 1 tab: Worker failed to boot — NameError: name 'x' is not defined"]
    _, late = tab(hub)  # nginx's 502 page carries the script too: it shows the error at once
    assert late[-1]["t"] == "overlay"
    hub.worker_ready(lambda path: 200)  # the fix serves
    assert inbox[-1]["t"] == "reload" and hub.overlay == ""


def test_csp_note_once_per_page() -> None:
    hub, lines, _ = make_hub()
    hub.csp_blocked("/strict?a=1")
    hub.csp_blocked("/strict?a=2")
    assert len(lines) == 1 and "not injected into /strict:" in lines[0] and "script-src 'self'" in lines[0]


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"host": "127.0.0.1:5000", "origin": "http://127.0.0.1:5000"}, True),
        ({"host": "localhost:8001", "origin": "http://localhost:8001"}, True),
        ({"host": "[::1]:5000", "origin": "http://[::1]:5000"}, True),
        ({"host": "127.0.0.1:5000", "origin": "http://127.0.0.1:5001"}, False),
        ({"host": "127.0.0.1:5000"}, False),
        ({"host": "evil.example:5000", "origin": "http://evil.example:5000"}, False),  # DNS rebinding
        ({"host": "192.168.1.9:5000", "origin": "http://192.168.1.9:5000"}, False),
    ],
)
def test_same_origin_on_loopback_only(headers: dict[str, str], ok: bool) -> None:
    assert same_origin(headers) is ok


def test_loopback_names() -> None:
    assert loopback_host("127.0.0.2:80") and loopback_host("app.localhost")
    assert not loopback_host("example.com") and not loopback_host("10.0.2.2:5000")


def _client(sock: socket.socket) -> WSConnection:
    """A wsproto client that has opened a WebSocket on sock (the server side accepts it)."""
    client = WSConnection(ConnectionType.CLIENT)
    sock.sendall(client.send(Request(host="127.0.0.1:5000", target="/__devstack/ws")))
    return client


def _read_events(sock: socket.socket, client: WSConnection) -> list[object]:
    client.receive_data(sock.recv(1 << 20))
    return list(client.events())


def test_websocket_messages_round_trip_on_wsproto() -> None:
    left, right = socket.socketpair()
    with left, right:
        client = _client(right)
        server = ws.Connection.accept(left, left.recv(65536))
        assert isinstance(_read_events(right, client)[0], AcceptConnection)
        payload = '{"t":"hello"}' * 20
        right.sendall(client.send(TextMessage(data=payload)))
        assert server.recv() == payload
        # A ping is answered with a pong, between two halves of a fragmented message.
        right.sendall(client.send(TextMessage(data="abc", message_finished=False)))
        right.sendall(client.send(Ping(b"p")))
        right.sendall(client.send(TextMessage(data="def", message_finished=True)))
        assert server.recv() == "abcdef"
        assert [type(e) for e in _read_events(right, client)] == [Pong]
        server.send("x" * 70000)
        got = ""
        while len(got) < 70000:
            for event in _read_events(right, client):
                assert isinstance(event, TextMessage)
                got += event.data
        assert got == "x" * 70000


def test_unmasked_client_frames_are_refused() -> None:
    left, right = socket.socketpair()
    with right:
        client = _client(right)
        server = ws.Connection.accept(left, left.recv(65536))
        _read_events(right, client)
        right.sendall(bytes([0x81, 3]) + b"abc")  # a client frame without its mask
        with pytest.raises(ws.Closed, match="1002"):
            server.recv()


def test_a_message_too_big_for_a_tab_is_refused() -> None:
    left, right = socket.socketpair()
    with right:
        client = _client(right)
        server = ws.Connection.accept(left, left.recv(65536))
        _read_events(right, client)
        big = client.send(TextMessage(data="y" * (ws.MAX_MESSAGE + 10)))
        writer = threading.Thread(target=lambda: _send_quietly(right, big), daemon=True)
        writer.start()  # the socket buffer is smaller than the message: the server reads meanwhile
        with pytest.raises(ws.Closed, match="too big"):
            server.recv()
        writer.join(5)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the server closed on it


def test_a_request_that_is_no_handshake_is_refused() -> None:
    left, right = socket.socketpair()
    with right:
        with pytest.raises(ws.Closed):
            ws.Connection.accept(left, b"GET /__devstack/ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert right.recv(100).startswith(b"HTTP/1.1 400")


def test_socket_paths_stay_short(tmp_path: Path) -> None:
    short = paths.stream_socket(tmp_path)
    assert short.parent == tmp_path.resolve()
    deep = tmp_path / ("x" * 120)
    moved = paths.stream_socket(deep)
    assert len(str(moved)) <= paths.SUN_PATH_MAX and moved.parent != deep
    assert paths.notify_socket(deep).parent == moved.parent


def test_live_reload_key_and_the_rendered_config(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "app.py").write_text("app = None\n")
    path = tmp_path / "devstack.toml"
    path.write_text("[server]\nlive_reload = false\n")
    off = config_mod.load(path)
    assert off.server.live_reload is False
    assert "__devstack" not in plan_mod.render_nginx(off, make_facts(off), True)
    path.write_text("")
    on = config_mod.load(path)
    text = plan_mod.render_nginx(on, make_facts(on), True)
    assert on.server.live_reload is True
    assert "sub_filter '</body>' '$devstack_live_tag</body>';" in text
    assert 'proxy_set_header Accept-Encoding "";' in text
    assert "location /__devstack/ {" in text
    path.write_text('[server]\nlive_reload = "yes"\n')
    with pytest.raises(ConfigError, match=r"server\.live_reload"):
        config_mod.load(path)


def test_tabs_answer_while_the_watcher_verifies() -> None:
    hub, lines, clock = make_hub()
    a, inbox = tab(hub)
    edit_id = hub.static_changed("css/app.css", "/static/css/app.css", 99.99)
    assert edit_id is not None and inbox[-1] == {"t": "css", "id": edit_id, "path": "/static/css/app.css"}
    clock.now = 100.012
    hub.message(a, {"t": "applied", "id": edit_id, "status": "applied", "sha": DISK})
    assert lines == []  # the watcher's verdict first
    hub.static_verified(edit_id, DISK, "fresh  css/app.css  3 ms")
    assert lines == ["fresh  css/app.css  3 ms · applied in 1 tab 22 ms"]
    # Not fresh at the public URL: the watcher says STALE itself, the edit is dropped.
    other = hub.static_changed("css/app.css", "/static/css/app.css", 100.5)
    assert other is not None
    hub.static_verified(other, "", None)
    hub.message(a, {"t": "applied", "id": other, "status": "applied", "sha": DISK})
    assert len(lines) == 1 and other not in hub.edits


def test_the_hub_tells_the_dashboard_about_tabs_and_each_edits_proofs() -> None:
    hub, lines, clock = make_hub()
    told: list[dict[str, Any]] = []
    hub.watchers.append(told.append)
    (a, inbox_a), (b, _) = tab(hub, "A"), tab(hub, "B")
    assert [e["t"] for e in told] == ["tabs", "tabs"]
    assert hub.static_fresh("css/app.css", "/static/css/app.css", DISK, "fresh  css/app.css  3 ms", 99.99)
    push = inbox_a[-1]
    clock.now = 100.011
    hub.message(a, {"t": "applied", "id": push["id"], "status": "applied", "sha": DISK, "same": True})
    clock.now = 100.021
    hub.message(b, {"t": "applied", "id": push["id"], "status": "applied", "sha": OTHER, "same": True})
    edit = next(e for e in told if e["t"] == "edit")
    assert edit["line"] == lines[0] == "fresh  css/app.css  3 ms · applied in 1 tab 21 ms"
    assert edit["tabs"] == [
        {"tab": '"A"', "status": "applied", "sha": DISK[:12], "ok": True, "ms": 21},
        {"tab": '"B"', "status": "applied", "sha": OTHER[:12], "ok": False, "ms": 31},
    ]
    listed = {t["title"]: t for t in hub.tab_list()}
    assert listed["A"]["file"] == "css/app.css" and listed["A"]["sha"] == DISK[:12]
    assert listed["B"]["sha"] == OTHER[:12]
    hub.disconnect(b)
    assert told[-1] == {"t": "tabs"} and [t["title"] for t in hub.tab_list()] == ["A"]
