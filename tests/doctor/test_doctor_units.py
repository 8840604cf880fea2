"""Pure logic: cache headers, the nginx parser (files, includes, file:line, location matching),
gunicorn argv parsing, and the hash ladder's naming of the first rung that differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.doctor import nginxconf, procinfo
from devstack.stack import httpcache, probes

DATE = "Thu, 26 Nov 2026 12:00:00 GMT"


@pytest.mark.unit
def test_freshness_from_headers() -> None:
    assert httpcache.freshness({"cache-control": "no-store"}).stored is False
    assert httpcache.freshness({"cache-control": "max-age=2592000"}).seconds == 2592000
    assert httpcache.freshness({"cache-control": "no-cache, max-age=60"}).kind == "none"
    expires = httpcache.freshness({"date": DATE, "expires": "Sat, 26 Dec 2026 12:00:00 GMT"})
    assert expires.kind == "explicit" and expires.seconds == 30 * 86400
    assert httpcache.freshness({"date": DATE, "expires": "-1"}).kind == "none"
    heur = httpcache.freshness({"date": DATE, "last-modified": "Wed, 16 Nov 2026 12:00:00 GMT"})
    assert heur.kind == "heuristic" and heur.seconds == 86400  # 10 % of ten days
    assert "about 24 h" in httpcache.browser_warning(
        {"date": DATE, "last-modified": "Wed, 16 Nov 2026 12:00:00 GMT"}
    )
    assert httpcache.browser_warning({"cache-control": "no-store"}) == ""


@pytest.mark.unit
def test_etag_kinds() -> None:
    assert httpcache.etag_kind('"6b0824ed-9d"') == "nginx"
    assert httpcache.etag_kind('"1700000000.123-157-2718281828"') == "werkzeug"
    assert httpcache.etag_kind('W/"abc"') == "other"
    assert httpcache.etag_kind(None) == "none"


@pytest.mark.unit
def test_parser_resolves_includes_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "static.conf").write_text(
        "# static\nlocation /static/ {\n    alias /srv/app/static/;\n    expires 30d;\n}\n"
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        "events {}\nhttp {\n  sendfile on;\n  server {\n    listen 8080;\n"
        "    include conf.d/*.conf;\n    location / { proxy_pass http://x; "
        'add_header X-A "a b;c"; }\n    location ~* \\.php$ { deny all; }\n  }\n}\n'
    )
    conf = nginxconf.load(main, nginx=None)
    assert conf.source == "files"
    server = conf.server_for(8080)
    assert server is not None
    loc = nginxconf.location_for(server, "/static/css/app.css")
    assert loc is not None and loc.args == ["/static/"]
    expires = loc.effective("expires")
    assert expires is not None and expires.where == f"{tmp_path}/conf.d/static.conf:4"
    sendfile = loc.effective("sendfile")  # inherited from http{}
    assert sendfile is not None and sendfile.where == f"{main}:3"
    root = nginxconf.location_for(server, "/index.php")
    assert root is not None and root.args[0] == "~*"
    header = nginxconf.location_for(server, "/x")
    assert header is not None and header.child("add_header").args == ["X-A", "a b;c"]  # type: ignore[union-attr]
    assert nginxconf.mapped_path(loc, "/static/css/app.css")[0] == "/srv/app/static/css/app.css"  # type: ignore[index]


@pytest.mark.unit
def test_split_nginx_dump() -> None:
    dump = (
        "# configuration file /a/nginx.conf:\nhttp {\n}\n\n# configuration file /a/mime.types:\ntypes { }\n"
    )
    files = nginxconf.split_dump(dump)
    assert set(files) == {"/a/nginx.conf", "/a/mime.types"}


@pytest.mark.unit
def test_gunicorn_argv_precedence() -> None:
    settings: dict[str, str] = {}
    sources: dict[str, str] = {}
    procinfo.parse_args(["-w", "4"], settings, sources, "GUNICORN_CMD_ARGS")
    app = procinfo.parse_args(
        ["--workers=1", "-kgevent", "--preload", "--reload", "app:app"], settings, sources, "command line"
    )
    assert app == "app:app"
    assert settings == {"workers": "1", "worker_class": "gevent", "preload_app": "true", "reload": "true"}
    assert sources["workers"] == "command line: --workers=1"
    assert procinfo.gunicorn_args(["/usr/bin/python3", "-m", "gunicorn", "-w", "2"]) == ["-w", "2"]


@pytest.mark.unit
def test_ladder_names_the_guest_when_the_sync_lags(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    file = static / "app.css"
    file.write_text("new")
    # Pure logic: the guest hook is the VM helper's job; here it reports an old copy.
    ladder = probes.hash_ladder(
        static, "/static/", file, [("nginx", None)], guest_sha=lambda _path: probes.sha256_bytes(b"old")
    )
    bad = ladder.first_bad
    assert bad is not None and bad.name == "guest"
    assert [r.name for r in ladder.rungs] == ["disk", "guest", "nginx"]
    assert ladder.rungs[2].skipped


@pytest.mark.unit
def test_docs_list_every_check() -> None:
    from devstack.doctor import registry

    docs = (Path(__file__).resolve().parents[2] / "docs" / "doctor.md").read_text()
    missing = [c for c in registry.load_all() if f"`{c}`" not in docs]
    assert not missing, f"document these checks in docs/doctor.md: {missing}"


def test_ladder_skips_layers_not_reachable_from_here(tmp_path: Path) -> None:
    """Behind a port forward, gunicorn's port may exist only in the VM: no answer is no verdict."""
    import functools
    import http.server
    import threading

    from tests.support.stack import free_ports

    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("h1 {}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        public = f"http://127.0.0.1:{server.server_address[1]}"
        closed = f"http://127.0.0.1:{free_ports(1)[0]}"
        ladder = probes.hash_ladder(
            static, "/static/", static / "app.css", [("app server", closed), ("public URL", public)]
        )
        assert ladder.rungs[1].status is None and ladder.first_bad is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_guest_hasher_is_built_from_the_vm_facts(tmp_path: Path) -> None:
    """VM mode's STALE line hashes the guest's copy: its paths come from vagrantfile.gather (an
    API change there once made every `doctor` of a VM stack an internal error)."""
    from devstack.doctor import targets
    from devstack.project import config as config_mod

    (tmp_path / "static").mkdir()
    (tmp_path / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    (tmp_path / "devstack.toml").write_text('[app]\nwsgi = "app:app"\n')
    hasher = targets.guest_hasher(config_mod.load(tmp_path / "devstack.toml"))
    assert callable(hasher)
