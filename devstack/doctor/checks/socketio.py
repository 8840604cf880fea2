"""Socket.IO through nginx: upgrade headers, Host/Origin, timeouts, buffering, async mode."""

from __future__ import annotations

import re
import urllib.parse

from devstack.doctor import nginxconf
from devstack.doctor.checks import config, needs_nginx, needs_public
from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check

ASYNC_FOR_WORKER = {"gthread": "threading", "sync": "threading", "gevent": "gevent", "eventlet": "eventlet"}


def _proxy_loc(ctx: Context) -> Outcome | nginxconf.Directive:
    skip = needs_nginx(ctx)
    if skip is not None:
        return skip
    loc = ctx.sio_location
    if loc is None or loc.effective("proxy_pass") is None:
        return na(f"no nginx location proxies {ctx.sio_path} to the app (socketio.route says where it goes)")
    return loc


def _headers(loc: nginxconf.Directive) -> dict[str, nginxconf.Directive]:
    return {d.args[0].lower(): d for d in loc.effective_all("proxy_set_header") if len(d.args) >= 2}


def _uses_socketio(ctx: Context) -> bool:
    return ctx.handshake is not None or (ctx.ws_app is not None and ctx.ws_app.status != 404)


MAP_FIX = "`map $http_upgrade $connection_upgrade { default upgrade; '' close; }` in http {}"


def _route_fix(ctx: Context, path: str, taken_by: nginxconf.Directive | None) -> str:
    upstream = ctx.app_url or "http://<gunicorn's address>"  # http://unix:/x.sock: as nginx spells it
    block = (
        f"location ^~ {path} {{ proxy_pass {upstream}; proxy_http_version 1.1; "
        "proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; "
        "proxy_set_header Host $http_host; proxy_set_header X-Forwarded-Proto $scheme; "
        "proxy_buffering off; proxy_read_timeout 300s; }"
    )
    if (
        taken_by is not None
        and nginxconf.location_prefix(taken_by) == path
        and not nginxconf.is_regex(taken_by)
    ):
        return (
            f"replace the location at {taken_by.where} with `{block}` (same prefix: a second one is "
            f"a duplicate nginx refuses), and {MAP_FIX}"
        )
    return (
        f"add `{block}` to the server (^~ and the longer prefix make it win over "
        f"{'`location ' + ' '.join(taken_by.args) + '`' if taken_by is not None else 'the server'} "
        f"and any regex location), and {MAP_FIX}"
    )


@check(
    "socketio.route",
    "nginx passes the Socket.IO path to the app",
    "error",
    "a `location ^~ /socket.io/` proxied to the app with the upgrade headers (the finding spells it out)",
    refs=("nginx docs: location matching", "Flask-SocketIO docs: nginx"),
)
def route(ctx: Context) -> Outcome:
    skip = needs_nginx(ctx)
    if skip is not None:
        return skip
    assert ctx.server is not None
    path = ctx.sio_path
    found = nginxconf.route(ctx.server, path)
    loc = found.location
    where = f"`location {' '.join(loc.args)}` ({loc.where})" if loc is not None else "no location"
    if found.proxy is not None:
        target = nginxconf.passes(found.proxy)
        via = f" via {found.proxy.name} {' '.join(found.proxy.args)}" if found.proxy is not loc else ""
        shown = target.text() if target is not None else "proxy_pass"
        return ok(f"{path} -> {where}{via}: {shown}", config(found.proxy))
    client = (
        any("socket.io" in url.lower() for url in ctx.page_assets()) if needs_public(ctx) is None else False
    )
    if not (_uses_socketio(ctx) or client):
        return na(
            f"{path} is not passed to an app, and nothing here uses Socket.IO (no handshake, no client)"
        )
    ev = [config(loc)] if loc is not None else []
    if found.because is not None:
        ev.append(config(found.because))
    if needs_public(ctx) is None:
        resp = ctx.polling_open(ctx.t.public_url, None)
        if resp is not None:
            kind = (resp.header("content-type") or "no Content-Type").split(";")[0]
            head = resp.body[:60].decode("utf-8", "replace").replace("\n", " ").strip()
            ev.append(
                Evidence(
                    "probe",
                    f"Engine.IO polling handshake -> HTTP {resp.status} {kind}: {head!r}"
                    + ("" if resp.body[:1] == b"0" else " (no open packet)"),
                    ctx.t.public_url.rstrip("/") + path,
                )
            )
        pub = ctx.ws_public
        ev.append(
            Evidence("probe", f"websocket via nginx: {pub.detail} (HTTP {pub.status})", ctx.t.public_url)
        )
    return Outcome(
        "error",
        f"{path} never reaches the app: nginx picks {where}, where {found.what} — the Socket.IO client "
        "gets no handshake, by websocket or by polling",
        ev,
        _route_fix(ctx, path, loc),
    )


@check(
    "socketio.upgrade",
    "WebSocket upgrade passes through nginx",
    "error",
    "in the location proxying /socket.io/, next to its other proxy_set_header lines (a block "
    "with any of its own inherits none from outside): `proxy_http_version 1.1; proxy_set_header "
    "Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;` with "
    "`map $http_upgrade $connection_upgrade { default upgrade; '' close; }` in http {}",
    refs=("nginx docs: WebSocket proxying", "doctor-catalog W1, W2"),
)
def upgrade(ctx: Context) -> Outcome:
    got = _proxy_loc(ctx)
    if isinstance(got, Outcome):
        return got
    ev: list[Evidence] = []
    missing = []
    version = got.effective("proxy_http_version")
    if version is None or version.args[:1] != ["1.1"]:
        missing.append("proxy_http_version 1.1")
        if version is not None:
            ev.append(config(version))
    headers = _headers(got)
    if "upgrade" not in headers:
        missing.append("proxy_set_header Upgrade $http_upgrade")
    if "connection" not in headers:
        missing.append("proxy_set_header Connection ...")
    ev.append(config(got))
    active = ""
    origin_only = False
    if needs_public(ctx) is None and ctx.ws_app is not None and ctx.ws_app.status != 404:
        pub, app, with_origin = ctx.ws_public, ctx.ws_app, ctx.ws_public_origin
        where = ctx.t.public_url
        ev.append(
            Evidence("probe", f"websocket via nginx, no Origin: {pub.detail} (HTTP {pub.status})", where)
        )
        ev.append(
            Evidence(
                "probe",
                f"websocket via nginx, Origin {where.rstrip('/')}: {with_origin.detail} "
                f"(HTTP {with_origin.status})",
                where,
            )
        )
        ev.append(
            Evidence("probe", f"websocket via app port: {app.detail} (HTTP {app.status})", ctx.app_url or "")
        )
        dup_host = any(g[0].args[0].lower() == "host" for g in nginxconf.duplicate_headers(got))
        if app.ok and not pub.ok and not dup_host:
            # (a second Host header makes the app refuse it: nginx.duplicate-header's finding)
            active = "the handshake works on the app port and fails through nginx"
        # Upgraded without Origin but refused with it: the app's origin check, not the upgrade.
        origin_only = pub.ok and not with_origin.ok
    if missing or active:
        what = "missing " + ", ".join(missing) if missing else active
        tail = f"; {active}" if missing and active else ""
        return Outcome("error", f"{what}{tail}: Socket.IO falls back to long-polling or fails", ev)
    passed = "HTTP/1.1, Upgrade and Connection are passed" + (
        "; the websocket upgrade works through nginx" if ctx.ws_public.ok else ""
    )
    if origin_only:
        passed += " (the handshake with the browser's Origin is refused: socketio.host-port says why)"
    conn = headers["connection"]
    if len(conn.args) >= 2 and conn.args[1].lower().strip('"') == "upgrade":
        # Flask-SocketIO's own docs recommend this; it costs keep-alive to the app, nothing breaks.
        return Outcome(
            "info",
            passed + "; Connection is hard-coded to upgrade, so every plain proxied request carries it too",
            [config(conn)],
            "optional: `map $http_upgrade $connection_upgrade { default upgrade; "
            "'' close; }` and `proxy_set_header Connection $connection_upgrade;`",
        )
    return ok(passed, *ev)


@check(
    "socketio.host-port",
    "The app sees the public host:port (Socket.IO origin check)",
    "error",
    "`proxy_set_header Host $http_host;` (not $host, which drops the port; not the default $proxy_host)",
    refs=("Flask-SocketIO#1501",),
)
def host_port(ctx: Context) -> Outcome:
    got = _proxy_loc(ctx)
    if isinstance(got, Outcome):
        return got
    twice = [g for g in nginxconf.duplicate_headers(got) if g[0].args[0].lower() == "host"]
    if twice:
        # Every request is refused (400) before the origin check: one fault, nginx.duplicate-header.
        return na("Host is set twice here: nginx.duplicate-header reports it", *[config(d) for d in twice[0]])
    host = _headers(got).get("host")
    value = host.args[1] if host is not None else "$proxy_host (nginx's default)"
    ev = [config(host)] if host is not None else [config(got)]
    config_bad = value not in ("$http_host",) and not re.search(r":\d+|\$server_port", value)
    active_bad = False
    if needs_public(ctx) is None and _uses_socketio(ctx):
        origin = ctx.t.public_url.rstrip("/")
        resp = ctx.polling_open(ctx.t.public_url, origin)
        if resp is not None:
            body = resp.body[:120].decode("utf-8", "replace")
            ev.append(
                Evidence(
                    "probe",
                    f"polling handshake with Origin: {origin} -> HTTP "
                    f"{resp.status} {body if resp.status != 200 else ''}".strip(),
                    ctx.t.public_url,
                )
            )
            active_bad = resp.status == 400
    headers = _headers(got)
    if (
        active_bad
        and not config_bad
        and ctx.t.public_url.startswith("https")
        and "x-forwarded-proto" not in headers
    ):
        # The host:port is right; the scheme is not: the app sees http:// behind TLS.
        return Outcome(
            "error",
            f"upstream Host {value} is right, but the app sees http:// while the browser's Origin "
            "is https:// — the origin check answers 400",
            ev,
            "`proxy_set_header X-Forwarded-Proto $scheme;` (gunicorn trusts it from 127.0.0.1 "
            "by default: --forwarded-allow-ips)",
        )
    # Behind TLS the scheme must reach the app too, or the next run finds the same check failing.
    fix = (
        "`proxy_set_header Host $http_host;` and `proxy_set_header X-Forwarded-Proto $scheme;` "
        "(not $host, which drops the port; the browser's Origin is https://)"
        if ctx.t.public_url.startswith("https") and "x-forwarded-proto" not in headers
        else ""
    )
    if active_bad or (config_bad and host is not None and value == "$host"):
        return Outcome(
            "error",
            f"upstream Host is {value}: the app compares the browser's "
            "Origin (with the public port) to it and answers 400 'not an accepted "
            "origin'",
            ev,
            fix,
        )
    if config_bad:
        return Outcome(
            "error",
            f"upstream Host is {value}: the app never sees the public port "
            "(Socket.IO origin check, redirects)",
            ev,
            fix,
        )
    return ok(f"Host {value}: the public host:port reaches the app", *ev)


@check(
    "socketio.read-timeout",
    "proxy_read_timeout is longer than the Socket.IO ping interval",
    "warning",
    "`proxy_read_timeout 300s;` in the location proxying /socket.io/",
)
def read_timeout(ctx: Context) -> Outcome:
    got = _proxy_loc(ctx)
    if isinstance(got, Outcome):
        return got
    directive = got.effective("proxy_read_timeout")
    seconds = _seconds(directive.args[0]) if directive is not None and directive.args else 60.0
    shake = ctx.handshake
    interval = (float(str(shake.get("pingInterval", 25000))) / 1000) if shake else 25.0
    ev = [
        config(directive)
        if directive is not None
        else Evidence("config", "proxy_read_timeout not set: nginx's default 60s", got.where)
    ]
    ev.append(
        Evidence(
            "probe",
            f"pingInterval {interval:.0f} s"
            + (" (from the Engine.IO handshake)" if shake else " (Socket.IO default)"),
        )
    )
    if seconds <= interval:
        return Outcome(
            "warning",
            f"proxy_read_timeout {seconds:.0f} s <= ping interval "
            f"{interval:.0f} s: nginx closes idle websockets before the next ping",
            ev,
        )
    return ok(f"proxy_read_timeout {seconds:.0f} s > ping interval {interval:.0f} s", *ev)


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value.strip())
    if not match:
        return 60.0
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * scale


@check(
    "socketio.buffering",
    "proxy_buffering is off for Socket.IO",
    "warning",
    "`proxy_buffering off;` in the location proxying /socket.io/",
)
def buffering(ctx: Context) -> Outcome:
    got = _proxy_loc(ctx)
    if isinstance(got, Outcome):
        return got
    directive = got.effective("proxy_buffering")
    if directive is not None and directive.args[:1] == ["off"]:
        return ok("proxy_buffering off", config(directive))
    ev = [
        config(directive)
        if directive is not None
        else Evidence("config", "proxy_buffering not set: nginx's default is on", got.where)
    ]
    return Outcome(
        "warning", "proxy buffering on the Socket.IO path: long-polling answers arrive late and in bursts", ev
    )


def _async_mode_in_source(ctx: Context) -> tuple[str, str] | None:
    """A literal async_mode='x' in the app's source (read with ast), with its file:line."""
    from devstack.project import asyncmode

    g = ctx.gunicorn
    uses = []
    if ctx.t.app_module_file is not None:
        file = ctx.t.app_module_file
        module = file.parent.name if file.name == "__init__.py" else file.stem
        base = file.parent.parent if file.name == "__init__.py" else file.parent
        uses.append(asyncmode.scan(base, module))
    if g is not None and g.app:
        uses.append(asyncmode.scan(g.app_dir, g.app.split(":", 1)[0]))
    explicit = asyncmode.merge(uses).explicit
    if explicit is None:
        return None
    mode, site = explicit
    return mode, site.where


@check(
    "socketio.async-mode",
    "Socket.IO's async_mode matches the gunicorn worker",
    "error",
    "pass async_mode explicitly: 'threading' for gthread, 'gevent' for gevent "
    "(left unset, Flask-SocketIO picks eventlet whenever it is importable)",
    refs=("Flask-SocketIO docs: deployment",),
)
def async_mode(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    if g is None:
        return na("no running gunicorn found to compare with")
    worker = g.worker_class
    want = ASYNC_FOR_WORKER.get(worker)
    if want is None:
        return na(f"worker class {worker} is not one Flask-SocketIO supports directly")
    env_mode = g.env.get("DEVSTACK_ASYNC_MODE")
    found = _async_mode_in_source(ctx)
    ev = [Evidence("output", f"worker class {worker} ({g.sources.get('worker_class', 'default')})")]
    if env_mode:
        mode, where = env_mode, "DEVSTACK_ASYNC_MODE in gunicorn's environment"
    elif found is not None:
        mode, where = found
    else:
        return na("async_mode is not set literally in the app module; cannot tell statically")
    ev.append(Evidence("config", f"async_mode {mode}", where))
    if mode != want:
        return Outcome(
            "error",
            f"async_mode {mode} under the {worker} worker (needs {want}): "
            "websockets fail or the worker blocks",
            ev,
        )
    shake = ctx.handshake
    if shake is not None and shake.get("upgrades") == []:
        return Outcome(
            "warning",
            "the Engine.IO handshake offers no websocket upgrade: the "
            "server has no websocket support for this async mode",
            ev,
            "pip install simple-websocket (threading) or gevent-websocket (gevent)",
        )
    return ok(f"async_mode {mode} fits the {worker} worker", *ev)


BANNER = re.compile(r"Socket\.IO(?:\.js)? (?:v|build:)?(\d+)\.(\d+)(?:\.(\d+))?", re.I)
URL_VERSION = re.compile(
    r"socket\.io(?:-client)?(?:/|@)(\d+)\.(\d+)\.(\d+)|/(\d+)\.(\d+)\.(\d+)/socket\.io", re.I
)
CLIENT_FIX = (
    "serve the Socket.IO JS client 4.x, which python-socketio 5.x speaks (Engine.IO 4): e.g. "
    "socket.io.min.js from https://cdn.socket.io/4.8.1/socket.io.min.js; a 1.x/2.x client needs "
    "python-socketio<5 (python-engineio<4)"
)


def _eio_for(major: int) -> int | None:
    """The Engine.IO protocol a JS client major speaks (0.9 predates Engine.IO)."""
    return {1: 3, 2: 3, 3: 4, 4: 4}.get(major)


def _client(ctx: Context) -> tuple[tuple[int, int], Evidence] | None:
    """The Socket.IO JS client the page loads: its version from the file's banner (served
    static, or in the static folder) or from a CDN URL."""
    for url in ctx.page_assets():
        if "socket.io" not in url.lower():
            continue
        found = URL_VERSION.search(url)
        if found:
            nums = [int(n) for n in found.groups() if n is not None]
            return (nums[0], nums[1]), Evidence("probe", f"the page loads {url}", ctx.t.public_url)
        full = urllib.parse.urljoin(ctx.t.public_url.rstrip("/") + "/", url)
        if urllib.parse.urlsplit(full).netloc != urllib.parse.urlsplit(ctx.t.public_url).netloc:
            continue  # another host: not fetched (loopback only)
        resp = ctx.get(full)
        if resp is not None and resp.status == 200:
            banner = BANNER.search(resp.body[:600].decode("utf-8", "replace"))
            if banner:
                return (int(banner.group(1)), int(banner.group(2))), Evidence("file", banner.group(0), full)
    if ctx.t.static_dir is not None and ctx.t.static_dir.is_dir():
        for file in sorted(ctx.t.static_dir.rglob("socket.io*.js")):
            try:
                head = file.read_bytes()[:600].decode("utf-8", "replace")
            except OSError:
                continue
            banner = BANNER.search(head)
            if banner:
                return (int(banner.group(1)), int(banner.group(2))), Evidence(
                    "file", banner.group(0), str(file)
                )
    return None


@check(
    "socketio.client-version",
    "The Socket.IO JS client speaks the server's protocol",
    "error",
    CLIENT_FIX,
    refs=("python-socketio docs: version compatibility",),
)
def client_version(ctx: Context) -> Outcome:
    skip = needs_public(ctx)
    if skip is not None:
        return skip
    found = _client(ctx)
    if found is None:
        return na("no Socket.IO JS client with a version found (page scripts, static socket.io*.js)")
    (major, minor), where = found
    eio = _eio_for(major)
    ev = [where]
    base = ctx.app_url or ctx.t.public_url
    if eio is None:
        return Outcome(
            "error", f"Socket.IO JS client {major}.{minor} predates Engine.IO: no server speaks it", ev
        )
    resp = ctx.get(base.rstrip("/") + f"/socket.io/?EIO={eio}&transport=polling&t=doctor-version")
    if resp is None:
        return na(f"{base} does not answer the Socket.IO handshake probe")
    body = resp.body[:160].decode("utf-8", "replace")
    ev.append(Evidence("probe", f"EIO={eio} polling handshake -> HTTP {resp.status} {body}".strip(), base))
    if resp.status == 200 and '"sid"' in body:
        return ok(f"client {major}.{minor} speaks Engine.IO {eio}, and the server answers it", *ev)
    if resp.status == 404:
        return na("the app has no /socket.io/ endpoint", *ev)
    if "unsupported version" in body.lower() or resp.status == 400:
        return Outcome(
            "error",
            f"the page's Socket.IO JS client {major}.{minor} speaks Engine.IO {eio}, which the "
            f"server refuses (HTTP {resp.status}): it never connects",
            ev,
        )
    return na(f"the EIO={eio} handshake answered HTTP {resp.status}; cannot tell", *ev)
