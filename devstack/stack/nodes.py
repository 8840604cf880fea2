"""Several Socket.IO nodes behind nginx (app.nodes > 1), proven as one site: the proof `up` waits
for, and the probes doctor uses on any multi-node stack.

Stdlib only, like probes.py: a RESP client for the queue (PING, PUBSUB NUMSUB), a Socket.IO
client that stays connected and waits for an event, the polling-session stickiness check. The
emit through the queue is published by python-socketio's own write-only RedisManager, run in
the app's interpreter (where the app's packages are), as an external process would publish.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass

from devstack.stack import probes

# Flask-SocketIO's channel on the queue (SocketIO(..., channel=) defaults to it).
CHANNEL = "flask-socketio"
NODE_COOKIE = "devstack_node"  # plan.NODE_COOKIE: the cookie nginx routes a client by
NODE_HEADER = "x-devstack-node"  # nginx says which node answered (devstack's nginx.conf)
PROBE_EVENT = "devstack:probe"


# -- the queue ---------------------------------------------------------------------------------


def redis_address(url: str) -> tuple[str, int, str, int]:
    """redis://[:password@]host:port[/db] -> (host, port, password, db)."""
    parts = urllib.parse.urlsplit(url)
    db = parts.path.strip("/")
    return (
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        urllib.parse.unquote(parts.password or ""),
        int(db) if db.isdigit() else 0,
    )


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisError(OSError):
    pass


def redis_command(url: str, *args: str, timeout: float = 2.0) -> object:
    """One command on a fresh connection (AUTH first when the URL has a password): its reply
    as str, int or list. A refused connection is an OSError; an error reply a RedisError."""
    host, port, password, _ = redis_address(url)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        if password:
            sock.sendall(_resp("AUTH", password))
            _read_reply(reader)
        sock.sendall(_resp(*args))
        return _read_reply(reader)


def _read_reply(reader: object) -> object:
    line = reader.readline()  # type: ignore[attr-defined]
    if not line:
        raise RedisError("the connection closed without an answer")
    kind, rest = line[:1], line[1:-2].decode("utf-8", "replace")
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)  # type: ignore[attr-defined]
        return bytes(data[:-2]).decode("utf-8", "replace")
    if kind == b"*":
        return [_read_reply(reader) for _ in range(max(int(rest), 0))]
    raise RedisError(f"not a Redis answer: {line[:40]!r}")


def subscribers(url: str, channel: str = CHANNEL, timeout: float = 2.0) -> int:
    """PUBSUB NUMSUB channel: how many connections (one per node) listen on the channel."""
    reply = redis_command(url, "PUBSUB", "NUMSUB", channel, timeout=timeout)
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], int):
        return reply[1]
    raise RedisError(f"unexpected PUBSUB NUMSUB answer {reply!r}")


def queue_problem(url: str) -> str:
    """ "" when the queue answers PING, else why not."""
    try:
        reply = redis_command(url, "PING")
    except OSError as exc:
        return f"{shown_url(url)} does not answer: {exc}"
    return "" if reply == "PONG" else f"{shown_url(url)} answered PING with {reply!r}"


def shown_url(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"//:[^@]*@", "//:***@", url)


# -- Socket.IO clients pinned to a node -----------------------------------------------------------


class NodeClient:
    """A Socket.IO client over WebSocket through nginx, sent to one node by its cookie, kept
    connected until closed; wait() reads packets until the event arrives."""

    def __init__(self, base_url: str, cookie: str = "", timeout: float = 3.0) -> None:
        host, port, _ = probes.split_url(base_url)
        headers = {"Cookie": cookie} if cookie else {}
        ws, status, head = probes.WebSocket.connect(
            host, port, "/socket.io/?EIO=4&transport=websocket", timeout, headers
        )
        if ws is None:
            first = head.split(b"\r\n", 1)[0].decode("latin-1")
            raise OSError(f"no websocket upgrade (HTTP {status}): {first or 'empty answer'}")
        self.ws = ws
        self.node = _header(head, NODE_HEADER)
        opened = ws.recv_text()
        if not opened.startswith("0"):
            raise OSError(f"unexpected Engine.IO open packet {opened[:60]!r}")
        ws.send_text("40")
        while True:
            packet = self._next()
            if packet.startswith("40"):
                return
            if packet.startswith("44"):
                raise OSError(f"connect refused: {packet[2:120]}")

    def _next(self) -> str:
        packet = self.ws.recv_text()
        if packet == "2":
            self.ws.send_text("3")
        return packet

    def wait(self, event: str, token: str, until: float) -> bool:
        """Read packets until 42["event", "token"] or the deadline."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            self.ws.sock.settimeout(left)
            try:
                packet = self._next()
            except (TimeoutError, OSError):
                return False
            if packet.startswith("42"):
                try:
                    data = json.loads(packet[2:])
                except ValueError:
                    continue
                if isinstance(data, list) and data[:2] == [event, token]:
                    return True

    def close(self) -> None:
        try:
            self.ws.send_text("41")
        except OSError:
            pass
        self.ws.close()


def _header(head: bytes, name: str) -> str:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""


# -- the publisher: python-socketio's write-only RedisManager in the app's interpreter -------------

PUBLISHER = """
import os, sys
try:
    import socketio
    manager = socketio.RedisManager(os.environ["DEVSTACK_QUEUE_URL"], channel=sys.argv[1], write_only=True)
except Exception as exc:
    print("error", type(exc).__name__, exc, flush=True)
    raise SystemExit(1)
print("ready", flush=True)
for line in sys.stdin:
    manager.emit(sys.argv[2], line.strip(), namespace="/")
    print("sent", flush=True)
"""


class Publisher:
    """Started early (its imports take a while), told the token when the clients listen."""

    def __init__(self, python: str, url: str, channel: str = CHANNEL) -> None:
        env = {**os.environ, "DEVSTACK_QUEUE_URL": url}
        self.proc = subprocess.Popen(
            [python, "-c", PUBLISHER, channel, PROBE_EVENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def emit(self, token: str, timeout: float) -> str:
        """ "" once published, else why not."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            first = self.proc.stdout.readline().strip()
            if first != "ready":
                rest = (self.proc.stderr.read() if self.proc.stderr else "").strip().splitlines()
                return first or (rest[-1] if rest else "the publisher exited")
            self.proc.stdin.write(token + "\n")
            self.proc.stdin.flush()
            sent = self.proc.stdout.readline().strip()
            return "" if sent == "sent" else f"the publisher said {sent!r}"
        except OSError as exc:
            return f"the publisher failed: {exc}"

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# -- the proof -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    index: int  # 1..N: the value of the node cookie
    name: str  # the process: gunicorn.2
    port: int  # its app port

    @property
    def shown(self) -> str:
        return f"node {self.index} ({self.name}, 127.0.0.1:{self.port})"


def cookie(index: int) -> str:
    return f"{NODE_COOKIE}={index}"


def answers(url: str, nodes: list[Node], timeout: float) -> tuple[str, str]:
    """GET / through nginx pinned to each node: (step, "") or ("", error)."""
    took = []
    for node in nodes:
        try:
            resp = probes.http_get(url + "/", timeout=timeout, headers={"Cookie": cookie(node.index)})
        except OSError as exc:
            return "", f"{node.shown} through nginx: {exc}"
        if not probes.app_answered(resp.status):
            return "", f"{node.shown} through nginx: GET / -> {resp.status}"
        said = resp.header(NODE_HEADER)
        if said != str(node.index):
            return "", f"GET / with the cookie of {node.shown} was answered by node {said or '?'}"
        took.append(f"{resp.elapsed * 1000:.0f}")
    return f"every node answers through nginx (GET / -> node 1..{len(nodes)}, {'/'.join(took)} ms)", ""


def polling_sticks(url: str, follow_ups: int = 3, timeout: float = 3.0) -> tuple[bool, str, str]:
    """A long-polling session opened without a cookie, then its follow-ups with the cookie the
    answer set: (sticks, what happened, the node). A follow-up answered 400 ("Invalid session")
    or by another node is the fault of a balancer without sticky sessions."""
    base = url.rstrip("/") + "/socket.io/?EIO=4&transport=polling"
    first = probes.http_get(base, timeout=timeout)
    if first.status != 200 or not first.body.startswith(b"0"):
        return False, f"the polling handshake answered HTTP {first.status}", ""
    sid = json.loads(first.body[1:].decode()).get("sid", "")
    set_cookie = first.header("set-cookie") or ""
    jar = "; ".join(part.split(";", 1)[0].strip() for part in set_cookie.split(", ") if "=" in part)
    node = first.header(NODE_HEADER) or ""
    headers = {"Cookie": jar} if jar else {}
    session = f"{base}&sid={urllib.parse.quote(sid)}"
    post = probes.http_get(
        session, timeout=timeout, method="POST", headers={**headers, "Content-Type": "text/plain"}, body=b"40"
    )
    seen = [node]
    try:
        if post.status != 200:
            return False, f"the session's POST answered HTTP {post.status}: {_body(post)}", node
        # Each follow-up: a GET that has something to fetch at once (the connect ack first, then
        # the answer to a connect to one more namespace, accepted or refused, either way an
        # immediate packet), so none of them waits as a long poll.
        for round_ in range(follow_ups):
            if round_:
                ask = f"40/devstack-probe-{round_},".encode()
                post = probes.http_get(session, timeout=timeout, method="POST", headers=headers, body=ask)
                seen.append(post.header(NODE_HEADER) or "")
                if post.status != 200:
                    return False, f"a follow-up POST answered HTTP {post.status}: {_body(post)}", node
            resp = probes.http_get(session, timeout=timeout, headers=headers)
            seen.append(resp.header(NODE_HEADER) or "")
            if resp.status != 200:
                return False, f"a follow-up GET answered HTTP {resp.status}: {_body(resp)}", node
            if node and any(other != node for other in seen):
                wrong = next(other for other in seen if other != node)
                return False, f"a follow-up went to node {wrong}, the session lives in node {node}", node
    finally:
        try:
            probes.http_get(session, timeout=timeout, method="POST", headers=headers, body=b"1")
        except OSError:
            pass
    where = f" (node {node})" if node else ""
    return True, f"a long-polling session's {len(seen)} requests stayed on its node{where}", node


def _body(resp: probes.Response) -> str:
    return resp.body[:80].decode("utf-8", "replace").strip()


def cross_node(
    url: str,
    nodes: list[Node],
    queue_url: str,
    python: str,
    env_name: str,
    until: float,
    publisher: Publisher | None = None,
) -> tuple[str, str]:
    """One Socket.IO client per node (by its cookie), the queue's subscribers counted, an emit
    published through the queue by python-socketio's RedisManager: each client must get it.
    Returns (step, "") or ("", the one line: which node, and the fix). `publisher`: one started
    earlier (its imports overlap the nodes' boot); closed here either way."""
    publisher = publisher or Publisher(python, queue_url)
    clients: dict[int, NodeClient] = {}
    try:
        for node in nodes:
            try:
                clients[node.index] = NodeClient(
                    url, cookie(node.index), timeout=max(until - time.monotonic(), 1)
                )
            except OSError as exc:
                return "", f"Socket.IO client for {node.shown} through nginx: {exc}"
        # The clients' connects start each node's queue listener (python-socketio subscribes
        # on its first connection): wait a moment for every node to subscribe.
        patience = min(until, time.monotonic() + 3.0)
        while True:
            try:
                count = subscribers(queue_url)
            except OSError as exc:  # redis-server still starting, or down: said after the patience
                if time.monotonic() >= patience:
                    return "", f"the message queue {shown_url(queue_url)}: {exc}"
                time.sleep(0.05)
                continue
            if count >= len(nodes) or time.monotonic() >= patience:
                break
            time.sleep(0.02)
        token = secrets.token_hex(8)
        started = time.perf_counter()
        problem = publisher.emit(token, timeout=max(until - time.monotonic(), 1))
        if problem:
            return "", (
                f"publishing through the message queue with python-socketio's RedisManager in the "
                f"app's python ({python}) failed: {problem} — install redis there (pip install redis)"
            )
        wait_until = max(until, time.monotonic() + 1.0)
        # Each client is read in turn: one that missed the emit must not use up the others'
        # time (their packet is already waiting in the socket).
        missing = [
            node
            for node in nodes
            if not clients[node.index].wait(PROBE_EVENT, token, max(wait_until, time.monotonic() + 0.3))
        ]
        took = (time.perf_counter() - started) * 1000
        if missing:
            which = (
                f"none of the {len(nodes)} nodes"
                if len(missing) == len(nodes)
                else " and ".join(node.shown for node in missing) + " never"
            )
            return "", (
                f"{which} got an emit published through the message queue "
                f"({shown_url(queue_url)}: {count} subscriber(s) to {CHANNEL!r} for {len(nodes)} nodes) "
                f'— give Flask-SocketIO the queue: SocketIO(app, message_queue=os.environ["{env_name}"])'
            )
        return (
            f"an emit through the message queue reached a client on each of the {len(nodes)} nodes "
            f"({count} subscribers, {took:.0f} ms)",
            "",
        )
    finally:
        for client in clients.values():
            client.close()
        publisher.close()
