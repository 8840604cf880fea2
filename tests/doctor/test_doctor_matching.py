"""Pure logic: nginx's location matching as nginx does it (=, ^~, regex order, nested, named,
`if`), proxy_pass targets (upstream, unix sockets), duplicated headers, permission walks."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from devstack.doctor import nginxconf, nginxproc, runner, targets
from devstack.doctor.model import CheckSpec, Outcome, Result
from devstack.stack import probes
from tests.support.require import require

pytestmark = pytest.mark.unit

CONF = """
http {
    upstream app_server { server unix:/run/app.sock fail_timeout=0; }
    upstream tcp_app { server 127.0.0.1:8000; }
    server {
        listen 8080;
        root /srv/site;
        location / { try_files $uri @proxy_to_app; }
        location = /exact { return 204; }
        location ^~ /static/ {
            alias /srv/static/;
            location ~ \\.map$ { deny all; }
        }
        location ~ \\.css$ { expires 1d; }
        location ~* \\.CSS$ { expires 2d; }
        location /api/ {
            location /api/v2/ { proxy_pass http://tcp_app; }
            if (!-f $request_filename) { proxy_pass http://tcp_app; }
        }
        location /assets/ { }
        location @proxy_to_app { proxy_pass http://app_server; }
    }
}
"""


def _server(text: str = CONF) -> nginxconf.Directive:
    root = nginxconf.parse_text({"/x/nginx.conf": text}, "/x/nginx.conf")
    conf = nginxconf.NginxConf(root, "files", "/x/nginx.conf")
    server = conf.server_for(8080)
    assert server is not None
    return server


def _loc(uri: str) -> list[str]:
    found = nginxconf.location_for(_server(), uri)
    return found.args if found is not None else []


def test_location_matching_follows_nginx() -> None:
    assert _loc("/exact") == ["=", "/exact"]
    assert _loc("/static/app.css") == ["^~", "/static/"]  # ^~ stops the regexes
    assert _loc("/static/app.js.map") == ["~", "\\.map$"]  # ...but not its nested ones
    assert _loc("/assets/app.css") == ["~", "\\.css$"]  # a regex beats a plain prefix
    assert _loc("/assets/APP.CSS") == ["~*", "\\.CSS$"]  # first matching regex, in order
    assert _loc("/api/v2/users") == ["/api/v2/"]  # nested prefix
    assert _loc("/other") == ["/"]


def test_proxy_location_follows_named_and_if() -> None:
    server = _server()
    sio = nginxconf.proxy_location(server, "/socket.io/")
    assert sio is not None and sio.args == ["@proxy_to_app"]
    api = nginxconf.proxy_location(server, "/api/x")
    assert api is not None and api.name == "if"
    http = server.parent
    assert nginxconf.proxy_target(http, sio.child("proxy_pass")) == "http://unix:/run/app.sock:"  # type: ignore[arg-type]
    assert nginxconf.proxy_target(http, api.child("proxy_pass")) == "http://127.0.0.1:8000"  # type: ignore[arg-type]


def test_server_level_try_files_reaches_named_location() -> None:
    text = (
        "http { server { listen 8080; root /s; try_files $uri @app;"
        " location @app { proxy_pass http://127.0.0.1:9; } } }"
    )
    found = nginxconf.proxy_location(_server(text), "/socket.io/")
    assert found is not None and found.args == ["@app"]


def test_proxy_targets() -> None:
    def target(arg: str) -> str | None:
        d = nginxconf.Directive("proxy_pass", [arg], "f", 1)
        return nginxconf.proxy_target(None, d)

    assert target("http://unix:/run/gunicorn.sock") == "http://unix:/run/gunicorn.sock:"
    assert target("http://unix:/tmp/a.sock:/socket.io") == "http://unix:/tmp/a.sock:"
    assert target("http://localhost:5000/socket.io") == "http://127.0.0.1:5000"
    assert target("https://backend") == "https://backend:443"
    assert target("http://$backend") is None
    assert probes.unix_target("http://unix:/run/a.sock:/static/x.css") == ("/run/a.sock", "/static/x.css")


def test_duplicate_headers_count_only_the_level_that_applies() -> None:
    text = """http { server { listen 8080;
        proxy_set_header Host $host;
        location / { proxy_set_header Host $http_host; proxy_set_header Host $host; proxy_pass http://a; }
        location /b { proxy_pass http://a; }
    } }"""
    server = _server(text)
    first = nginxconf.location_for(server, "/")
    other = nginxconf.location_for(server, "/b")
    assert first is not None and other is not None
    assert [len(g) for g in nginxconf.duplicate_headers(first)] == [2]
    assert nginxconf.duplicate_headers(other) == []  # one Host, inherited from the server


def test_permission_walk_names_the_folder_and_the_class() -> None:
    # Not pytest's tmp_path: its parents are 0700 and would be the first folder named.
    tmp_path = Path(tempfile.mkdtemp(prefix="doctor-perm-"))
    try:
        _walk(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _walk(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "static").mkdir(parents=True)
    css = site / "static" / "app.css"
    css.write_text("x")
    os.chmod(tmp_path, 0o755)
    os.chmod(site, 0o700)
    nobody = nginxproc.WorkerUser("nobody", 65534, (65534,), "test")
    require(os.geteuid() != 65534, "runs as nobody: the walk needs a user other than nobody")
    found = nginxproc.blocked(css, nobody)
    assert found is not None and found.path == site and found.chmod == "o+x", found
    os.chmod(site, 0o711)
    os.chmod(css, 0o600)
    found = nginxproc.blocked(css, nobody)
    assert found is not None and found.path == css and found.chmod == "o+r"
    os.chmod(css, 0o644)
    assert nginxproc.blocked(css, nobody) is None


def test_fail_level_and_static_url_root() -> None:
    spec = CheckSpec("net.x", "net", "t", "warning", "f", lambda ctx: Outcome("ok", ""))
    warned = [Result(spec, Outcome("warning", "w"), 0.0)]
    assert runner.exit_code(warned) == 0
    assert runner.exit_code(warned, "warning") == 1
    target = targets.from_options("http://127.0.0.1:1", None, None, "/", None, None)
    assert target.static_prefix == "/"
    assert (
        targets.from_options("http://127.0.0.1:1", None, None, "assets", None, None).static_prefix
        == "/assets/"
    )


def test_error_page_reaches_named_location() -> None:
    text = (
        "http { server { listen 8080; root /s;"
        " location / { error_page 404 = @app; }"
        " location @app { proxy_pass http://127.0.0.1:9; } } }"
    )
    found = nginxconf.proxy_location(_server(text), "/socket.io/")
    assert found is not None and found.args == ["@app"]
