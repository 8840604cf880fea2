"""Several Socket.IO nodes behind one nginx: sticky sessions, the message queue between them,
and ip_hash where every client has the same address. For devstack's stack (app.nodes > 1) and
any other, from the nginx config (the upstream the Socket.IO location proxies to) and the probes.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from devstack.doctor.checks import config, needs_nginx, needs_public
from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.nginxconf import Directive
from devstack.doctor.registry import check
from devstack.stack import nodes as nodes_mod

STICKY_FIX = (
    "route every request of a client to the node its session lives in: a cookie nginx sets on the "
    "first request (`split_clients $request_id` picks a node, `map $cookie_…` routes by it, "
    "`add_header Set-Cookie` when absent: what devstack's app.nodes does), or `hash $cookie_… "
    "consistent`; ip_hash only when clients have different addresses"
)
QUEUE_FIX = (
    "run a message queue and give it to Flask-SocketIO on every node: "
    'SocketIO(app, message_queue=os.environ["REDIS_URL"]) (devstack: app.nodes > 1 runs redis-server '
    "and sets REDIS_URL; another stack: pass its URL with --queue-url)"
)


@dataclass(frozen=True)
class Pool:
    """The app servers the Socket.IO location balances over, and the config saying so."""

    servers: list[str]  # as written: 127.0.0.1:5001, unix:/run/app.sock
    upstreams: list[Directive]
    proxy_pass: Directive


def _pool(ctx: Context) -> Pool | Outcome:
    skip = needs_nginx(ctx)
    if skip is not None:
        return skip
    loc = ctx.sio_location
    proxy = loc.effective("proxy_pass") if loc is not None else None
    if proxy is None or not proxy.args:
        return na("no nginx location proxies /socket.io/ to the app")
    conf = ctx.conf()
    http = conf.http() if conf is not None else None
    _, _, rest = proxy.args[0].partition("://")
    host = rest.split("/", 1)[0]
    stem = host.split("$", 1)[0]
    upstreams = [
        u
        for u in (http.children("upstream") if http is not None else [])
        if u.args and (u.args[0] == host or ("$" in host and stem and u.args[0].startswith(stem)))
    ]
    servers = [
        s.args[0] for u in upstreams for s in u.children("server") if s.args and "backup" not in s.args
    ]
    if not upstreams:
        servers = [host]
    return Pool(servers, upstreams, proxy)


def _node_urls(ctx: Context, pool: Pool) -> list[str]:
    urls = []
    for server in pool.servers:
        if server.startswith("unix:"):
            urls.append("http://unix:" + server[len("unix:") :] + ":")
        else:
            urls.append("http://" + server.replace("localhost", "127.0.0.1"))
    return urls


def _balancing(pool: Pool) -> list[Directive]:
    found = []
    for upstream in pool.upstreams:
        for name in ("ip_hash", "hash", "sticky", "least_conn", "random"):
            found += upstream.children(name)
    return found


def _pool_evidence(pool: Pool) -> list[Evidence]:
    ev = [config(pool.proxy_pass)]
    for upstream in pool.upstreams[:4]:
        servers = ", ".join(s.args[0] for s in upstream.children("server") if s.args)
        ev.append(Evidence("config", f"upstream {upstream.args[0]} {{ server {servers} }}", upstream.where))
    return ev


def _multi(ctx: Context) -> Pool | Outcome:
    pool = _pool(ctx)
    if isinstance(pool, Outcome):
        return pool
    if len(pool.servers) < 2:
        return ok(f"one app server ({pool.servers[0] if pool.servers else '?'}): nothing to balance")
    return pool


@check(
    "socketio.sticky",
    "Several app servers: a client's requests stay on its node (sticky sessions)",
    "error",
    STICKY_FIX,
    refs=("Flask-SocketIO docs: Using Multiple Workers",),
)
def sticky(ctx: Context) -> Outcome:
    pool = _multi(ctx)
    if isinstance(pool, Outcome):
        return pool
    skip = needs_public(ctx)
    if skip is not None:
        return skip
    ev = _pool_evidence(pool) + [config(d) for d in _balancing(pool)]
    try:
        sticks, what, _ = nodes_mod.polling_sticks(ctx.t.public_url)
    except (OSError, ValueError) as exc:
        return na(f"no long-polling session to follow: {exc}", *ev)
    ev.append(Evidence("probe", f"long-polling session through nginx: {what}", ctx.t.public_url))
    if not sticks:
        return Outcome(
            "error",
            f"{len(pool.servers)} app servers and no sticky sessions: {what} — Socket.IO's "
            'long-polling clients fail with 400 "Invalid session" and reconnect',
            ev,
        )
    return ok(f"{len(pool.servers)} app servers; {what}", *ev)


def _queue_url(ctx: Context) -> tuple[str, str]:
    """The message queue's URL and where it came from ("", "" when none is known)."""
    if ctx.t.queue_url:
        return ctx.t.queue_url, "devstack.toml" if ctx.t.managed else "--queue-url"
    gunicorn = ctx.gunicorn
    if gunicorn is not None:
        for name, value in sorted(gunicorn.env.items()):
            if re.match(r"rediss?://", value):
                return value, f"${name} of gunicorn (pid {gunicorn.pid})"
    return "", ""


@check(
    "socketio.queue-reachable",
    "The message queue the nodes relay emits through answers",
    "error",
    "start the queue (devstack runs redis-server itself for app.nodes > 1: `devstack status` shows "
    "it), or correct its URL (queue.url, --queue-url)",
)
def queue_reachable(ctx: Context) -> Outcome:
    url, source = _queue_url(ctx)
    if not url:
        return ok("no message queue in use")
    problem = nodes_mod.queue_problem(url)
    ev = [Evidence("probe", f"PING {nodes_mod.shown_url(url)} (from {source})", nodes_mod.shown_url(url))]
    if problem:
        ev.append(Evidence("probe", problem))
        return Outcome("error", f"the message queue does not answer: {problem}", ev)
    return ok(f"{nodes_mod.shown_url(url)} answers PING", *ev)


@check(
    "socketio.message-queue",
    "Every node is subscribed to the message queue (broadcasts reach every node's clients)",
    "error",
    QUEUE_FIX,
    refs=("Flask-SocketIO docs: Using Multiple Workers", "python-socketio: RedisManager"),
)
def message_queue(ctx: Context) -> Outcome:
    pool = _multi(ctx)
    if isinstance(pool, Outcome):
        return pool
    ev = _pool_evidence(pool)
    count = len(pool.servers)
    url, source = _queue_url(ctx)
    if not url:
        return Outcome(
            "error",
            f"{count} app servers and no message queue: a broadcast reaches only the clients of the "
            "node that sent it",
            [
                *ev,
                Evidence("probe", "no queue URL in devstack.toml, --queue-url or the gunicorn's environment"),
            ],
        )
    if nodes_mod.queue_problem(url):
        return na("the message queue does not answer: socketio.queue-reachable says why", *ev)
    # python-socketio subscribes on a node's first connection: one client each, straight to it.
    clients: list[nodes_mod.NodeClient] = []
    unreached = []
    try:
        for node_url in _node_urls(ctx, pool):
            try:
                clients.append(nodes_mod.NodeClient(node_url, timeout=3.0))
            except OSError as exc:
                unreached.append(f"{node_url}: {exc}")
        subscribed = _subscribers_settled(url, count)
    finally:
        for client in clients:
            client.close()
    ev.append(
        Evidence(
            "probe",
            f"PUBSUB NUMSUB {nodes_mod.CHANNEL} on {nodes_mod.shown_url(url)} (from {source}): {subscribed}, "
            f"after a Socket.IO client connected to each of {len(clients)} node(s)",
            nodes_mod.shown_url(url),
        )
    )
    ev += [Evidence("probe", f"no Socket.IO connect: {line}") for line in unreached]
    if not clients:
        return na("no node accepted a Socket.IO connection, so none could subscribe", *ev)
    if subscribed < count:
        return Outcome(
            "error",
            f"{count} nodes and {subscribed} subscriber(s) to {nodes_mod.CHANNEL!r} on the queue: "
            f"a broadcast from one node misses the clients of {count - subscribed} node(s)",
            ev,
        )
    return ok(f"{count} nodes, {subscribed} subscribers to {nodes_mod.CHANNEL!r}", *ev)


def _subscribers_settled(url: str, wanted: int, patience: float = 2.0) -> int:
    import time

    deadline = time.monotonic() + patience
    while True:
        try:
            count = nodes_mod.subscribers(url)
        except OSError:
            return 0
        if count >= wanted or time.monotonic() >= deadline:
            return count
        time.sleep(0.05)


def _loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@check(
    "nginx.ip-hash-local",
    "Stickiness by client address, where every client has the same address",
    "warning",
    STICKY_FIX,
)
def ip_hash_local(ctx: Context) -> Outcome:
    pool = _multi(ctx)
    if isinstance(pool, Outcome):
        return pool
    by_address = [
        d
        for d in _balancing(pool)
        if d.name == "ip_hash" or (d.name == "hash" and d.args and "remote_addr" in d.args[0])
    ]
    if not by_address:
        return ok("the app servers are not chosen by client address")
    ev = [config(d) for d in by_address] + _pool_evidence(pool)
    if not _loopback(ctx.t.public_url):
        return ok("stickiness by client address, for clients on other machines", *ev)
    ev.append(Evidence("probe", f"{ctx.t.public_url}: every client of this machine comes from 127.0.0.1"))
    return Outcome(
        "warning",
        f"{by_address[0].text()} with {len(pool.servers)} app servers: every local client has the same "
        "address and lands on the same node, so the other nodes (and the queue between them) are never "
        "exercised here",
        ev,
    )
