"""What doctor looks at: the target stack and lazily fetched, cached facts about it.

A target is either the stack devstack runs (from devstack.toml) or one it did not start
(--url, --nginx-conf, --static-dir). Every probe runs at most once per doctor run; checks share
them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from devstack.doctor import nginxconf, nginxproc, procinfo
from devstack.doctor.nginxconf import Directive, NginxConf
from devstack.stack import probes
from devstack.system import fsinfo, ports

ASSET = re.compile(r"""<(?:link|script)\b[^>]*?(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
# A client created with an explicit path: io({path: '/chat/socket.io'}) or io(url, {path: ...})
SIO_PATH = re.compile(r"""\bio\([^)]*?\bpath\s*:\s*["'](/[^"']+)["']""", re.S)
WS_TIMEOUT = 3.0  # a websocket handshake that works takes milliseconds on loopback
CHURN_LOOK = 1.0  # seconds between the two looks at gunicorn's workers


@dataclass
class Target:
    public_url: str  # what the browser uses
    static_dir: Path | None
    static_prefix: str = "/static/"
    nginx_conf: Path | None = None
    nginx_prefix: Path | None = None  # nginx -p (devstack runs nginx with its state dir)
    nginx_bin: str | None = None
    app_url: str | None = None  # gunicorn, straight (None: learn it from nginx's proxy_pass)
    gunicorn_log: Path | None = None
    managed: bool = False  # started by devstack (devstack.toml)
    running: bool = True  # the stack is supposed to be up (managed: state says so)
    config_path: Path | None = None
    app_worker: str | None = None  # from devstack.toml when gunicorn is not running
    app_module_file: Path | None = None
    wanted_ports: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (host, port)
    # VM mode: hash the guest's copy of a file (sha256 hex), or None when it is missing.
    guest_sha: Callable[[Path], str | None] | None = None
    sample: Path | None = None  # the static file to prove freshness with
    own_pids: frozenset[int] = frozenset()  # devstack's processes and their children (managed)
    insecure: bool = False  # https: accept a certificate that does not verify (self-signed dev certs)
    cacert: Path | None = None  # https: a local CA (mkcert's) trusted besides the system's
    project_dir: Path | None = None  # where the project declares its gunicorn (Procfile, units...)
    last_failure: str = ""  # managed: why the last `devstack up` failed (state.json), "" if it did not
    queue_url: str = ""  # the message queue of several nodes (devstack.toml's, or --queue-url)


def port_of(url: str) -> int:
    return probes.split_url(url)[1]


class Context:
    def __init__(self, target: Target) -> None:
        self.t = target

    # -- TLS --------------------------------------------------------------------------------------
    @cached_property
    def certificate(self) -> probes.Certificate | None:
        """The public URL's certificate, verified as a browser would (None: not https, or
        nothing speaks TLS there — net.public-url says so)."""
        if not self.t.public_url.startswith("https://"):
            return None
        try:
            return probes.certificate(self.t.public_url, timeout=5.0, cafile=self.cafile)
        except OSError:
            return None

    @property
    def cafile(self) -> str | None:
        return str(self.t.cacert) if self.t.cacert is not None else None

    @property
    def insecure(self) -> bool:
        """Probe over TLS without verification: --insecure, or a certificate this system does not
        trust (net.tls-trust reports it once; every other probe still runs)."""
        if self.t.insecure:
            return True
        cert = self.certificate
        return cert is not None and not cert.verified

    # -- nginx config ---------------------------------------------------------------------------
    @cached_property
    def nginx(self) -> NginxConf | None:
        if self.t.nginx_conf is None:
            return None
        return nginxconf.load(self.t.nginx_conf, self.t.nginx_bin, self.t.nginx_prefix)

    @cached_property
    def nginx_error(self) -> str:
        try:
            _ = self.nginx
        except (OSError, nginxconf.ParseError) as exc:
            return str(exc)
        return ""

    def conf(self) -> NginxConf | None:
        """The parsed config, or None when there is none or it cannot be read (nginx_error says)."""
        return None if self.nginx_error else self.nginx

    @cached_property
    def server(self) -> Directive | None:
        conf = self.conf()
        if conf is None:
            return None
        return conf.server_for(self.nginx_port)

    @cached_property
    def nginx_port(self) -> int | None:
        """nginx's port for this site (the public one, unless a port forward sits between)."""
        conf = self.conf()
        if conf is None:
            return None
        public = port_of(self.t.public_url)
        ports = [nginxconf.listen_port(s) for s in conf.servers()]
        if public in ports:
            return public
        return next((p for p in ports if p is not None), None)

    @property
    def nginx_url(self) -> str | None:
        if self.nginx_port is None:
            return None
        tls = self.server is not None and any("ssl" in d.args[1:] for d in self.server.children("listen"))
        return f"{'https' if tls else 'http'}://127.0.0.1:{self.nginx_port}"

    def location(self, uri: str) -> Directive | None:
        return nginxconf.location_for(self.server, uri) if self.server is not None else None

    @property
    def static_uri(self) -> str:
        return self.t.static_prefix + (self.sample_rel or "")

    @cached_property
    def static_location(self) -> Directive | None:
        return self.location(self.static_uri)

    @cached_property
    def sio_path(self) -> str:
        """The Socket.IO path: the one the page's client names (io({path: '/x/'})), else the
        default /socket.io/."""
        page = self.get(self.t.public_url.rstrip("/") + "/") if self.public_reachable() else None
        if page is not None and page.status == 200:
            found = SIO_PATH.search(page.body.decode("utf-8", "replace"))
            if found:
                return "/" + found.group(1).strip("/") + "/"
        return "/socket.io/"

    @cached_property
    def sio_location(self) -> Directive | None:
        """The location that proxies Socket.IO (a named one reached by try_files included)."""
        if self.server is None:
            return None
        return nginxconf.proxy_location(self.server, self.sio_path)

    # -- the running nginx ----------------------------------------------------------------------
    @cached_property
    def worker_user(self) -> nginxproc.WorkerUser | None:
        return nginxproc.worker_user(self.conf(), self.nginx_port)

    @cached_property
    def error_logs(self) -> list[Path]:
        master = nginxproc.master_on(self.nginx_port)
        return nginxproc.error_logs(self.conf(), master, self.t.nginx_prefix)

    # -- the app server -------------------------------------------------------------------------
    @cached_property
    def app_url(self) -> str | None:
        """gunicorn's address: --app-url, else where nginx proxies / (or /socket.io/) to."""
        if self.t.app_url:
            return self.t.app_url
        conf = self.conf()
        if conf is None or self.server is None:
            return None
        # / first, then Socket.IO's path, then any location that proxies (a single-page app's
        # /api/: the same gunicorn behind another prefix).
        candidates = [nginxconf.proxy_location(self.server, "/"), self.sio_location]
        candidates += nginxconf.proxying_locations(self.server)
        for loc in candidates:
            target = loc.effective("proxy_pass") if loc is not None else None
            if target is not None:
                found = nginxconf.proxy_target(conf.http(), target)
                if found is not None:
                    return found
        return None

    @cached_property
    def app_port(self) -> int | None:
        if self.app_url is None or probes.is_unix(self.app_url):
            return None
        return port_of(self.app_url)

    @cached_property
    def gunicorn(self) -> procinfo.Gunicorn | None:
        return procinfo.find(self.app_url, self.t.nginx_prefix if self.t.managed else None)

    @cached_property
    def worker_looks(self) -> tuple[list[int], list[int]] | None:
        """The gunicorn master's worker pids, then again a second later: workers that keep dying
        are replaced by new pids in between (None: no gunicorn found)."""
        g = self.gunicorn
        if g is None:
            return None
        first = [pid for pid, _ in procinfo.workers_of(g.pid)]
        time.sleep(CHURN_LOOK)
        return first, [pid for pid, _ in procinfo.workers_of(g.pid)]

    # -- static files ---------------------------------------------------------------------------
    @cached_property
    def sample(self) -> Path | None:
        if self.t.sample is not None:
            return self.t.sample
        if self.t.static_dir is None or not self.t.static_dir.is_dir():
            return None
        return probes.sample_static_file(self.t.static_dir)

    @cached_property
    def sample_rel(self) -> str | None:
        """The sample's path under the static prefix; without a static folder (--url alone),
        the first static asset the index page links: its headers can still be judged."""
        if self.sample is not None and self.t.static_dir is not None:
            return self.sample.relative_to(self.t.static_dir).as_posix()
        if self.t.static_dir is not None:
            return None
        for url in self.page_assets():
            path = urllib.parse.urlsplit(url).path
            if path.startswith(self.t.static_prefix) and len(path) > len(self.t.static_prefix):
                return urllib.parse.unquote(path[len(self.t.static_prefix) :])
        return None

    def page_assets(self) -> list[str]:
        """<link href> and <script src> URLs of the index page."""
        page = self.get(self.t.public_url.rstrip("/") + "/")
        if page is None or page.status != 200:
            return []
        return ASSET.findall(page.body.decode("utf-8", "replace"))

    @cached_property
    def static_fstype(self) -> str:
        return fsinfo.fstype(self.t.static_dir) if self.t.static_dir is not None else "unknown"

    def get(self, url: str, headers: dict[str, str] | None = None) -> probes.Response | None:
        key = (url, json.dumps(headers or {}, sort_keys=True))
        if key not in self._responses:
            try:
                self._responses[key] = probes.http_get(
                    url, timeout=5.0, headers=headers, insecure=self.insecure, cafile=self.cafile
                )
            except OSError as exc:
                self._responses[key] = None
                self._errors[url] = str(exc)
        return self._responses[key]

    @cached_property
    def _responses(self) -> dict[tuple[str, str], probes.Response | None]:
        return {}

    @cached_property
    def _errors(self) -> dict[str, str]:
        return {}

    def error_for(self, url: str) -> str:
        return self._errors.get(url, "")

    @property
    def public_static_url(self) -> str | None:
        if self.sample_rel is None:
            return None
        return probes.static_url_for(self.t.public_url, self.t.static_prefix, self.sample_rel)

    def public_static(self) -> probes.Response | None:
        url = self.public_static_url
        return self.get(url) if url else None

    def app_static(self) -> probes.Response | None:
        if self.app_url is None or self.sample_rel is None:
            return None
        return self.get(probes.static_url_for(self.app_url, self.t.static_prefix, self.sample_rel))

    @cached_property
    def ladder(self) -> probes.Ladder | None:
        if self.sample is None or self.t.static_dir is None:
            return None
        nginx = self.nginx_url if self.nginx_url != self.t.public_url.rstrip("/") else None
        if nginx is not None and self.nginx_port is not None:
            # Behind a port forward nginx's own port may live in a VM: use it only if this
            # machine's listener there is an nginx.
            owner = ports.port_owner(self.nginx_port)
            if owner is None or "nginx" not in owner.name:
                nginx = None
        rungs: list[tuple[str, str | None]] = [
            ("nginx", nginx),
            ("app server", self.app_url),
            ("public URL", self.t.public_url),
        ]
        return probes.hash_ladder(
            self.t.static_dir,
            self.t.static_prefix,
            self.sample,
            rungs,
            guest_sha=self.t.guest_sha,
            insecure=self.insecure,
            cafile=self.cafile,
        )

    def public_reachable(self) -> bool:
        return self.get(self.t.public_url.rstrip("/") + "/") is not None

    # -- Socket.IO ------------------------------------------------------------------------------
    @cached_property
    def _ws(self) -> dict[str, probes.SocketIOResult | None]:
        """The websocket handshake three ways, so that one cause is told from the other: through
        nginx without an Origin (the upgrade path alone), through nginx with the browser's Origin
        (the app's origin check too), and on the app port directly. All at once: a broken upgrade
        often hangs until the timeout, and doctor waits once."""
        origin = self.t.public_url.rstrip("/")
        public = self.t.public_url
        insecure, cafile = self.insecure, self.cafile  # wss:// like https://
        path = self.sio_path
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = {
                "public": pool.submit(
                    probes.socketio_websocket, public, path, WS_TIMEOUT, None, insecure, cafile
                ),
                "public_origin": pool.submit(
                    probes.socketio_websocket, public, path, WS_TIMEOUT, origin, insecure, cafile
                ),
            }
            if self.app_url:
                jobs["app"] = pool.submit(probes.socketio_websocket, self.app_url, path, timeout=WS_TIMEOUT)
            results: dict[str, probes.SocketIOResult | None] = {k: f.result() for k, f in jobs.items()}
        results.setdefault("app", None)
        return results

    @property
    def ws_public(self) -> probes.SocketIOResult:
        """Through nginx, without Origin: only the upgrade path decides."""
        result = self._ws["public"]
        assert result is not None
        return result

    @property
    def ws_public_origin(self) -> probes.SocketIOResult:
        result = self._ws["public_origin"]
        assert result is not None
        return result

    @property
    def ws_app(self) -> probes.SocketIOResult | None:
        return self._ws["app"]

    def polling_open(self, base: str, origin: str | None) -> probes.Response | None:
        """An Engine.IO long-polling handshake, as a browser's first Socket.IO request."""
        headers = {"Origin": origin} if origin else None
        return self.get(base.rstrip("/") + self.sio_path + "?EIO=4&transport=polling&t=doctor", headers)

    @cached_property
    def handshake(self) -> dict[str, object] | None:
        """The Engine.IO open packet (pingInterval, upgrades): from the app server, else public."""
        for base in (self.app_url, self.t.public_url):
            if base is None:
                continue
            resp = self.polling_open(base, None)
            if resp is not None and resp.status == 200 and resp.body[:1] == b"0":
                try:
                    data = json.loads(resp.body[1:].split(b"\x1e", 1)[0])
                except ValueError:
                    continue
                return data if isinstance(data, dict) else None
        return None

    def now(self) -> float:
        return time.time()
