"""Ports: who holds the stack's ports, and are they open to the LAN?"""

from __future__ import annotations

import psutil

from devstack.doctor.context import Context, port_of
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check
from devstack.system import ports

EXPECTED = {"public": ("nginx",), "nginx": ("nginx",), "app": ("gunicorn", "python")}
ANY_ADDRESS = ("0.0.0.0", "::", "*")


def _ports(ctx: Context) -> dict[str, int]:
    found: dict[str, int] = {}
    if ctx.t.managed:
        for key, (_, port) in ctx.t.wanted_ports.items():
            found[key] = port
        return found
    if ctx.nginx_port is not None:
        found["nginx"] = ctx.nginx_port
    elif ctx.t.public_url:
        found["public"] = port_of(ctx.t.public_url)
    if ctx.app_port is not None:
        found["app"] = ctx.app_port
    return found


def _listeners(port: int) -> list[tuple[str, int | None]]:
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return []
    return [
        (c.laddr.ip, c.pid)
        for c in conns
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    ]


@check(
    "net.public-url",
    "The public URL answers",
    "error",
    "start the stack (`devstack up`), or check the URL and the port forward (Vagrant: `vagrant port`)",
)
def public_url(ctx: Context) -> Outcome:
    if ctx.t.managed and not ctx.t.running:
        return na("the stack is not running (`devstack up`)")
    url = ctx.t.public_url.rstrip("/") + "/"
    resp = ctx.get(url)
    if resp is None:
        owner = ports.port_owner(port_of(ctx.t.public_url))
        ev = [Evidence("probe", f"GET / -> {ctx.error_for(url) or 'no answer'}", url)]
        if owner is not None:
            ev.append(Evidence("probe", f"port held by {owner.describe()}", owner.address))
        return Outcome(
            "error", f"nothing answers HTTP at {ctx.t.public_url}: every other probe is skipped", ev
        )
    ev = [
        Evidence("probe", f"GET / -> HTTP {resp.status}: {resp.body[:100].decode('utf-8', 'replace')}", url)
    ]
    if resp.status == 400:
        # A 400 to a plain GET / is no answer a browser can use: a header nginx sends twice (Host)
        # makes gunicorn refuse every request. (502/504 are gunicorn.running's to explain.)
        return Outcome(
            "error",
            "GET / -> HTTP 400: the app refuses every request (a header nginx sends twice, "
            "such as Host: see nginx.duplicate-header)",
            ev,
            "remove the second `proxy_set_header` of the same header (nginx.duplicate-header's fix)",
        )
    unverified = (
        " (over TLS without verification: net.tls-trust)"
        if ctx.insecure and not ctx.t.insecure and url.startswith("https")
        else ""
    )
    return ok(f"GET / -> HTTP {resp.status} in {resp.elapsed * 1000:.0f} ms{unverified}")


@check(
    "net.tls-trust",
    "The https certificate is one this system trusts",
    "error",
    "`devstack doctor --insecure` for this run, or `--cacert FILE` with the local CA that signed "
    "it (`mkcert -CAROOT` shows where mkcert keeps rootCA.pem); for the browser, trust that CA "
    "(`mkcert -install`)",
    refs=("issue #26",),
)
def tls_trust(ctx: Context) -> Outcome:
    if not ctx.t.public_url.startswith("https://"):
        return na("the public URL is not https")
    if ctx.t.managed and not ctx.t.running:
        return na("the stack is not running (`devstack up`)")
    if ctx.t.insecure:
        return na("--insecure: the certificate is not judged (every probe ran without verification)")
    cert = ctx.certificate
    if cert is None:
        return na(f"nothing answers TLS at {ctx.t.public_url}: net.public-url says why")
    what = [
        f"subject {cert.subject or '?'}",
        f"issuer {cert.issuer or '?'}",
        f"expires {cert.not_after or '?'}",
    ]
    ev = [Evidence("probe", "; ".join(what), ctx.t.public_url)]
    trusted = "the system's CAs" + (f" and --cacert {ctx.t.cacert}" if ctx.t.cacert else "")
    if cert.verified:
        return ok(f"verified against {trusted}: {cert.subject}, expires {cert.not_after}", *ev)
    ev.append(Evidence("probe", f"verification failed: {cert.reason} (OpenSSL code {cert.code})"))
    if cert.self_signed:
        kind = "self-signed"
        fix = (
            "`devstack doctor --insecure` for this run (a self-signed certificate has no CA to trust; "
            "the browser needs its own exception), or make the certificate with a local CA "
            "(`mkcert 127.0.0.1 localhost`) and pass `--cacert` with that CA"
        )
    elif cert.code in (20, 21, 19):
        kind = f"signed by an issuer this system does not trust ({cert.issuer or 'unknown'})"
        fix = (
            "`devstack doctor --cacert FILE` with that issuer's CA certificate (mkcert's: "
            "`$(mkcert -CAROOT)/rootCA.pem`), or --insecure for this run; for the browser, trust "
            "that CA (`mkcert -install`)"
        )
    else:
        kind = f"refused: {cert.reason}"
        fix = (
            "a certificate for the URL's host that has not expired (mkcert 127.0.0.1 localhost), "
            "or --insecure for this run"
        )
    return Outcome(
        "error",
        f"the certificate at {ctx.t.public_url} is {kind} (subject {cert.subject or '?'}, expires "
        f"{cert.not_after or '?'}): browsers warn and this system refuses it — every other probe "
        "ran over TLS without verification",
        ev,
        fix,
    )


@check(
    "net.ports-taken",
    "The stack's ports are held by the stack, not another process",
    "error",
    "stop the other process, or move the stack to free ports (server.listen / server.app_port)",
)
def ports_taken(ctx: Context) -> Outcome:
    wanted = _ports(ctx)
    if not wanted:
        return na("no ports known")
    problems: list[Evidence] = []
    fine: list[str] = []
    for key, port in wanted.items():
        owner = ports.port_owner(port)
        if owner is None:
            fine.append(f"{port} free")
            continue
        if ctx.t.managed:
            # devstack knows its own processes: anything else holding the port is in the way.
            ours = owner.pid in ctx.t.own_pids
        else:
            ours = owner.pid is not None and any(
                e in owner.name or e in owner.cmdline for e in EXPECTED.get(key, ())
            )
        if ours:
            fine.append(f"{port} held by {owner.name}")
        else:
            problems.append(Evidence("probe", f"{key} port {port}: {owner.describe()}", owner.address))
    if problems:
        return Outcome("error", "taken by another process: " + "; ".join(e.text for e in problems), problems)
    return ok(", ".join(fine))


@check(
    "net.lan-exposure",
    "The stack listens on loopback only",
    "warning",
    'bind to 127.0.0.1 (server.listen = "127.0.0.1:5000", gunicorn -b 127.0.0.1:PORT; '
    'Vagrant: host_ip: "127.0.0.1" on forwarded ports)',
    refs=("doctor-catalog V1, R6",),
)
def lan_exposure(ctx: Context) -> Outcome:
    ports = _ports(ctx)
    if not ports or (ctx.t.managed and not ctx.t.running):
        return na("nothing of the stack is listening")
    exposed = []
    seen = []
    for key, port in ports.items():
        for address, pid in _listeners(port):
            seen.append(f"{address}:{port}")
            if address in ANY_ADDRESS:
                exposed.append(
                    Evidence(
                        "probe", f"{key} port {port} listens on {address} (pid {pid})", f"{address}:{port}"
                    )
                )
    if exposed:
        return Outcome(
            "warning",
            "listening on all interfaces: anyone on the LAN reaches the dev "
            "server (and its debugger tracebacks)",
            exposed,
        )
    if not seen:
        return na("nothing listens on the stack's ports")
    return ok("loopback only: " + ", ".join(seen))


# A name no DNS answers (RFC 2606's .invalid): what a rebinding page's requests carry instead.
MADE_UP_HOST = "rebind.devstack-doctor.invalid"


@check(
    "net.any-host",
    "The stack answers only its own host names (DNS rebinding)",
    "warning",
    "answer only the names the stack is reached by: server_name 127.0.0.1 localhost; and a "
    "`listen ... default_server; return 444;` server for every other Host (devstack does both: "
    "a LAN name goes in server.hosts)",
)
def any_host(ctx: Context) -> Outcome:
    if ctx.t.managed and not ctx.t.running:
        return na("the stack is not running (`devstack up`)")
    url = ctx.t.public_url.rstrip("/") + "/"
    normal = ctx.get(url)
    if normal is None:
        return na(f"{ctx.t.public_url} does not answer")
    host = f"{MADE_UP_HOST}:{port_of(ctx.t.public_url)}"
    resp = ctx.get(url, headers={"Host": host})
    if resp is None:
        return ok(f"a request with Host: {host} gets no answer (connection closed)")
    ev = [Evidence("probe", f"GET / with Host: {host} -> HTTP {resp.status}", url)]
    if resp.status == 421 or (resp.status >= 400 and resp.status != normal.status):
        return ok(f"a request with Host: {host} is refused (HTTP {resp.status})", *ev)
    # devstack's own stack must never; for a server devstack did not set up it is advice: a
    # public site's single server block commonly answers any Host, and rebinding is a threat to
    # what listens on loopback or a LAN.
    return Outcome(
        "warning" if ctx.t.managed else "info",
        f"answers any Host (GET / with Host: {host} -> HTTP {resp.status}, as for its own name): a "
        "web page whose name resolves to 127.0.0.1 (DNS rebinding) can read the app and open a "
        "Socket.IO session with its own Origin",
        ev,
    )
