"""doctor/nginxconf.py to the letter: tokens, lines, includes, errors, listen values, location
matching, mapped files, proxy targets (the mutants `make mutation` found surviving)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from devstack.doctor import nginxconf
from devstack.doctor.nginxconf import Directive, ParseError
from devstack.system.runner import Completed

pytestmark = pytest.mark.unit


def parse(text: str, **files: str) -> Directive:
    return nginxconf.parse_text({"/etc/n/nginx.conf": text, **files}, "/etc/n/nginx.conf")


def server(text: str) -> Directive:
    found = parse("http {\n server {\n" + text + "\n }\n}\n").child("http")
    assert found is not None
    srv = found.child("server")
    assert srv is not None
    return srv


# -- tokenize ---------------------------------------------------------------------------------


def test_tokens_carry_their_line_and_whether_they_were_quoted() -> None:
    text = "a b;\n# c d;\n  e \"f g\" {\n\th 'i\\'j';\n}\n"
    assert nginxconf.tokenize(text) == [
        ("a", 1, False),
        ("b", 1, False),
        (";", 1, False),
        ("e", 3, False),
        ("f g", 3, True),
        ("{", 3, False),
        ("h", 4, False),
        ("i'j", 4, True),
        (";", 4, False),
        ("}", 5, False),
    ]


def test_a_quoted_string_over_lines_keeps_its_first_line_and_counts_the_rest() -> None:
    assert nginxconf.tokenize('a "x\ny";\nb;') == [
        ("a", 1, False),
        ("x\ny", 1, True),
        (";", 2, False),
        ("b", 3, False),
        (";", 3, False),
    ]


def test_variables_in_braces_stay_one_word_and_punctuation_ends_words() -> None:
    assert nginxconf.tokenize("set ${a}b{x};") == [
        ("set", 1, False),
        ("${a}b", 1, False),
        ("{", 1, False),
        ("x", 1, False),
        ("}", 1, False),
        (";", 1, False),
    ]
    assert nginxconf.tokenize('a"b"') == [("a", 1, False), ("b", 1, True)]
    assert nginxconf.tokenize("${unterminated") == [("${unterminated", 1, False)]
    assert nginxconf.tokenize('"open') == [("open", 1, True)]
    assert nginxconf.tokenize('"end\\') == [("end\\", 1, True)]
    assert nginxconf.tokenize("# only a comment") == []


# -- parsing -----------------------------------------------------------------------------------


def test_blocks_nest_with_their_parents_files_and_lines() -> None:
    root = parse("events {}\nhttp {\n  server {\n    listen 80;\n  }\n}\n")
    assert [d.name for d in root.block or []] == ["events", "http"]
    http = root.child("http")
    assert http is not None and http.line == 2 and http.parent is root
    srv = http.child("server")
    assert srv is not None and srv.line == 3 and srv.parent is http
    listen = srv.child("listen")
    assert listen is not None
    assert (listen.args, listen.where, listen.block) == (["80"], "/etc/n/nginx.conf:4", None)
    assert listen.chain() == [listen, srv, http, root]
    assert root.child("events") is not None and root.child("events").block == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a;\n}", "/etc/n/nginx.conf:2: unexpected }"),
        ("a b", "/etc/n/nginx.conf:1: a is not terminated by ; or {"),
        ("http {\n a;\n", "/etc/n/nginx.conf: missing }"),
    ],
)
def test_parse_errors_say_file_and_line(text: str, error: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse(text)
    assert str(raised.value) == error


def test_a_quoted_brace_is_an_argument() -> None:
    root = parse('return 200 "}";\nadd_header X ";";')
    assert [(d.name, d.args) for d in root.block or []] == [
        ("return", ["200", "}"]),
        ("add_header", ["X", ";"]),
    ]


def test_includes_resolve_relative_to_the_main_files_folder_in_name_order() -> None:
    root = parse(
        "http {\n include conf.d/*.conf;\n include /abs/x.conf;\n include missing.conf;\n}\n",
        **{
            "/etc/n/conf.d/b.conf": "b;\n",
            "/etc/n/conf.d/a.conf": "\na;\n",
            "/abs/x.conf": "x;\n",
            "/etc/n/other/c.conf": "c;\n",
        },
    )
    http = root.child("http")
    assert http is not None
    assert [(d.name, d.where) for d in http.block or []] == [
        ("a", "/etc/n/conf.d/a.conf:2"),
        ("b", "/etc/n/conf.d/b.conf:1"),
        ("x", "/abs/x.conf:1"),
    ]
    assert all(d.parent is http for d in http.block or [])


def test_an_include_without_argument_is_kept_as_a_directive() -> None:
    root = parse("include;\n")
    assert [(d.name, d.args) for d in root.block or []] == [("include", [])]


def test_an_include_loop_stops_at_twenty_levels() -> None:
    with pytest.raises(ParseError) as raised:
        parse("include loop.conf;\n", **{"/etc/n/loop.conf": "a;\ninclude loop.conf;\n"})
    assert str(raised.value) == "/etc/n/loop.conf:2: include nesting too deep"


def test_twenty_levels_of_includes_are_read() -> None:
    files = {f"/etc/n/l{i}.conf": f"d{i};\ninclude l{i + 1}.conf;\n" for i in range(19)}
    files["/etc/n/l19.conf"] = "last;\n"
    root = parse("include l0.conf;\n", **files)
    assert [d.name for d in root.block or []][-1] == "last"
    assert len(root.block or []) == 20


def test_files_on_disk_are_read_with_their_includes(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("a;\n")
    (tmp_path / "plain.conf").write_text("p;\n")
    main = tmp_path / "nginx.conf"
    main.write_text("include conf.d/*.conf;\ninclude plain.conf;\n")
    root = nginxconf.parse_text({}, str(main), read_disk=True)
    assert [(d.name, d.file) for d in root.block or []] == [
        ("a", str(tmp_path / "conf.d" / "a.conf")),
        ("p", str(tmp_path / "plain.conf")),
    ]
    assert (root.name, root.file, root.line) == ("main", str(main), 0)


def test_directive_text_and_walk() -> None:
    root = parse("http {\n server { listen 80; }\n}\nuser www;\n")
    assert [d.text() for d in root.walk()] == ["http { … }", "server { … }", "listen 80;", "user www;"]
    assert Directive("x", [], "f", 1).text() == "x;"


# -- nginx -T or the files -----------------------------------------------------------------------


class FakeRun:
    def __init__(self, result: Completed) -> None:
        self.result = result
        self.argv: list[str] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> Completed:
        self.argv = list(argv)
        assert kwargs["timeout"] == 30
        return self.result


def test_load_prefers_nginx_dash_t(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("from disk;\n")
    dump = f"nginx: the configuration file {conf} syntax is ok\n# configuration file {conf}:\nfrom dump;\n"
    run = FakeRun(Completed(0, dump, ""))
    loaded = nginxconf.load(conf, "/usr/sbin/nginx", run=run)
    assert run.argv == ["/usr/sbin/nginx", "-T", "-c", str(conf), "-e", "stderr"]
    assert (loaded.source, loaded.main_file, loaded.note) == ("nginx -T", str(conf), "")
    assert [d.name for d in loaded.root.block or []] == ["from"]
    assert loaded.root.block[0].args == ["dump"]  # type: ignore[index]
    nginxconf.load(conf, "/usr/sbin/nginx", prefix=tmp_path / "p", run=run)
    assert run.argv == ["/usr/sbin/nginx", "-p", str(tmp_path / "p"), "-T", "-c", str(conf), "-e", "stderr"]


def test_load_falls_back_to_the_files_saying_why(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("from disk;\n")
    failed = Completed(1, "", "nginx: [warn] x\nnginx: [emerg] unknown directive\n")
    loaded = nginxconf.load(conf, "/usr/sbin/nginx", run=FakeRun(failed))
    assert (loaded.source, loaded.note) == ("files", "nginx: [emerg] unknown directive")
    assert loaded.root.block[0].args == ["disk"]  # type: ignore[index]
    # nginx ran but dumped other files: not this config's dump
    other = Completed(0, "# configuration file /elsewhere.conf:\nx;\n", "")
    assert nginxconf.load(conf, "/usr/sbin/nginx", run=FakeRun(other)).source == "files"
    none = nginxconf.load(conf, None)
    assert (none.source, none.note, none.main_file) == ("files", "nginx is not installed here", str(conf))


def test_split_dump_keeps_each_files_lines() -> None:
    dump = "noise before\n# configuration file /a.conf:\na;\n\nb;\n# configuration file /b.conf:\nc;"
    assert nginxconf.split_dump(dump) == {"/a.conf": "a;\n\nb;\n", "/b.conf": "c;\n"}
    assert nginxconf.split_dump("# configuration file /a.conf\n") == {}


# -- listen ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "hosts", "port"),
    [
        ("8080", ["0.0.0.0"], 8080),
        ("*:81", ["0.0.0.0"], 81),
        ("127.0.0.1:5000", ["127.0.0.1"], 5000),
        ("[::1]:5001", ["::1"], 5001),
        ("[::]", ["::"], None),
        ("localhost", ["localhost"], None),
        ("unix:/run/x.sock", ["unix"], None),
    ],
)
def test_listen_values(listen: str, hosts: list[str], port: int | None) -> None:
    srv = server(f"listen {listen} default_server;")
    assert nginxconf.listen_hosts(srv) == hosts
    assert nginxconf.listen_port(srv) == port


def test_listen_defaults_and_several_listens() -> None:
    assert nginxconf.listen_port(server("root /x;")) == 80
    assert nginxconf.listen_hosts(server("root /x;")) == []
    both = server("listen;\nlisten 127.0.0.1:81;\nlisten [::1]:82;")
    assert nginxconf.listen_port(both) == 81
    assert nginxconf.listen_hosts(both) == ["127.0.0.1", "::1"]


def test_server_for_picks_the_server_listening_on_the_port() -> None:
    root = parse(
        "http {\n server { listen 80; server_name a; }\n"
        " server { listen; listen 127.0.0.1:81; server_name b; }\n}\n"
    )
    conf = nginxconf.NginxConf(root, "files", "/etc/n/nginx.conf")
    names = [s.child("server_name").args for s in conf.servers()]  # type: ignore[union-attr]
    assert names == [["a"], ["b"]]
    assert conf.server_for(81).child("server_name").args == ["b"]  # type: ignore[union-attr]
    assert conf.server_for(80).child("server_name").args == ["a"]  # type: ignore[union-attr]
    assert conf.server_for(99).child("server_name").args == ["a"]  # type: ignore[union-attr]
    assert conf.server_for(None).child("server_name").args == ["a"]  # type: ignore[union-attr]
    assert [d.args for d in conf.all("server_name")] == [["a"], ["b"]]
    empty = nginxconf.NginxConf(parse("events {}\n"), "files", "x")
    assert (empty.http(), empty.servers(), empty.server_for(80)) == (None, [], None)


# -- locations ------------------------------------------------------------------------------------

LOCATIONS = """
location / { }
location /static/ { location /static/img/ { } location ~ \\.svg$ { } }
location ^~ /assets/ { }
location = /exact { }
location ~* \\.PNG$ { }
location ~ ( { }
location @named { }
"""


@pytest.mark.parametrize(
    ("uri", "found"),
    [
        ("/", "/"),
        ("/exact", "= /exact"),
        ("/exact/more", "/"),
        ("/static/a.css", "/static/"),
        ("/static/img/a.gif", "/static/img/"),
        ("/static/img/a.svg", "~ \\.svg$"),
        ("/x.png", "~* \\.PNG$"),
        ("/assets/x.png", "^~ /assets/"),
        ("/static/x.png", "~* \\.PNG$"),
    ],
)
def test_location_matching_follows_nginx(uri: str, found: str) -> None:
    loc = nginxconf.location_for(server(LOCATIONS), uri)
    assert loc is not None and " ".join(loc.args) == found


def test_no_location_matches_without_a_root_prefix() -> None:
    assert nginxconf.location_for(server("location /a/ { }"), "/b") is None
    assert nginxconf.location_for(server("location = /a { }"), "/b") is None


def test_a_nested_exact_location_wins_at_once() -> None:
    srv = server("location /a/ { location = /a/b { } }\nlocation ~ b$ { }")
    assert nginxconf.location_for(srv, "/a/b").args == ["=", "/a/b"]  # type: ignore[union-attr]
    assert nginxconf.location_for(srv, "/a/cb").args == ["~", "b$"]  # type: ignore[union-attr]


def test_a_regex_with_nested_locations_is_searched_in_turn() -> None:
    srv = server("location ~ ^/r/ { location ~ \\.js$ { } }")
    assert nginxconf.location_for(srv, "/r/x.js").args == ["~", "\\.js$"]  # type: ignore[union-attr]
    assert nginxconf.location_for(srv, "/r/x.css").args == ["~", "^/r/"]  # type: ignore[union-attr]


def test_location_prefix_and_is_regex() -> None:
    def loc(args: list[str]) -> Directive:
        return Directive("location", args, "f", 1, block=[])

    assert [
        nginxconf.location_prefix(loc(a)) for a in (["/a/"], ["=", "/b"], ["^~", "/c/"], ["~", "d"], [])
    ] == [
        "/a/",
        "/b",
        "/c/",
        "d",
        "",
    ]
    assert [nginxconf.is_regex(loc(a)) for a in (["~", "x"], ["~*", "x"], ["/x"], [])] == [
        True,
        True,
        False,
        False,
    ]


def test_mapped_path_alias_root_and_none() -> None:
    srv = server(
        "root /srv/www/;\n"
        "location /static/ { alias /srv/app/static/; }\n"
        "location ~ ^/re/ { alias /srv/re/; }\n"
        "location /plain/ { }\n"
    )
    static = nginxconf.location_for(srv, "/static/css/a.css")
    assert static is not None
    path, used = nginxconf.mapped_path(static, "/static/css/a.css")  # type: ignore[misc]
    assert (path, used.name) == ("/srv/app/static/css/a.css", "alias")
    regex = nginxconf.location_for(srv, "/re/x")
    assert nginxconf.mapped_path(regex, "/re/x") == ("/srv/www/re/x", srv.child("root"))  # type: ignore[arg-type]
    plain = nginxconf.location_for(srv, "/plain/y")
    assert nginxconf.mapped_path(plain, "/plain/y")[0] == "/srv/www/plain/y"  # type: ignore[arg-type, index]
    bare = nginxconf.location_for(server("location / { }"), "/")
    assert bare is not None and nginxconf.mapped_path(bare, "/") is None


# -- proxying -------------------------------------------------------------------------------------


def test_fallback_named_from_try_files_or_error_page() -> None:
    srv = server(
        "location @app { proxy_pass http://127.0.0.1:8000; }\n"
        "location / { try_files $uri @app; }\n"
        "location /e/ { error_page 404 @app; }\n"
        "location /n/ { try_files $uri =404; }\n"
    )
    named = nginxconf.named_location(srv, "@app")
    for uri in ("/x", "/e/x"):
        loc = nginxconf.location_for(srv, uri)
        assert nginxconf.fallback_named(srv, loc) is named  # type: ignore[arg-type]
        assert nginxconf.proxy_location(srv, uri) is named
    assert nginxconf.fallback_named(srv, nginxconf.location_for(srv, "/n/x")) is None  # type: ignore[arg-type]
    srv_level = server("error_page 502 @app;\nlocation @app { proxy_pass http://a; }\nlocation / { }")
    assert nginxconf.fallback_named(srv_level, nginxconf.location_for(srv_level, "/")) is not None  # type: ignore[arg-type]


def test_proxy_location_through_an_if_block_or_nowhere() -> None:
    srv = server(
        "location / { if (!-f $request_filename) { proxy_pass http://app; } }\n"
        "location /s/ { root /srv; }\n"
        "location @n { if ($x) { proxy_pass http://n; } }\n"
        "location /f/ { try_files $uri @n; }\n"
    )
    found = nginxconf.proxy_location(srv, "/x")
    assert found is not None and found.name == "if"
    assert nginxconf.proxy_location(srv, "/s/a").args == ["/s/"]  # type: ignore[union-attr]
    via_named = nginxconf.proxy_location(srv, "/f/a")
    assert via_named is not None and via_named.name == "if" and via_named.parent.args == ["@n"]  # type: ignore[union-attr]
    assert nginxconf.proxy_location(server("root /x;"), "/") is None
    assert nginxconf.proxy_location(server("proxy_pass http://a;"), "/") is None
    assert [d.name for d in nginxconf.proxying_locations(srv)] == ["if", "if"]


@pytest.mark.parametrize(
    ("arg", "target"),
    [
        ("http://localhost:8000/x", "http://127.0.0.1:8000"),
        ("http://app", "http://127.0.0.1:5001"),
        ("http://sock", "http://unix:/run/s.sock:"),
        ("http://empty", None),
        ("http://unix:/run/direct.sock:/path", "http://unix:/run/direct.sock:"),
        ("https://example.org", "https://example.org:443"),
        ("http://example.org", "http://example.org:80"),
        ("http://$upstream", None),
    ],
)
def test_proxy_target(arg: str, target: str | None) -> None:
    http = parse(
        "http {\n upstream app { server localhost:5001; server other:1; }\n"
        " upstream sock { server unix:/run/s.sock; }\n upstream empty { }\n}\n"
    ).child("http")
    assert nginxconf.proxy_target(http, Directive("proxy_pass", [arg], "f", 1)) == target
    assert nginxconf.proxy_target(http, Directive("proxy_pass", [], "f", 1)) is None


def test_duplicate_headers_by_name_case_insensitively() -> None:
    srv = server(
        "proxy_set_header Host $host;\n"
        "location / { proxy_set_header Host $host; proxy_set_header host $http_host;"
        " proxy_set_header X-A 1; proxy_set_header Lonely; }\n"
        "location /b/ { }\n"
    )
    dupes = nginxconf.duplicate_headers(nginxconf.location_for(srv, "/x"))  # type: ignore[arg-type]
    assert [[d.args[1] for d in group] for group in dupes] == [["$host", "$http_host"]]
    assert nginxconf.duplicate_headers(nginxconf.location_for(srv, "/b/x")) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "found"),
    [
        ("/z/assets/x", "/"),  # `^~ /assets/` is a prefix, never searched as a regex
        ("/a/b/c", "= /a/b/c"),  # an exact match two levels down ends the search
        ("/a/d/x", "^~ /a/d/"),  # so does a nested ^~
        ("/a/yx", "~ x$"),  # a nested regex before the outer ones
        ("/a/b/z", "~ z$"),  # a nested plain prefix does not stop the outer regexes
        ("/q", "~ q$"),  # a regex nginx would refuse is passed over, not the end of the list
    ],
)
def test_nested_locations_and_regexes_follow_nginx(uri: str, found: str) -> None:
    srv = server(
        "location /a/ { location /a/b/ { location = /a/b/c { } } location ^~ /a/d/ { }"
        " location ~ x$ { } }\n"
        "location ^~ /assets/ { }\n"
        "location / { }\n"
        "location ~ ( { }\n"
        "location ~ c$ { }\nlocation ~ y { }\nlocation ~ z$ { }\nlocation ~ q$ { }\n"
    )
    loc = nginxconf.location_for(srv, uri)
    assert loc is not None and " ".join(loc.args) == found


def shown(d: Directive | None) -> str | None:
    return None if d is None else d.text()


ROUTES = [
    ("location / { proxy_pass http://a; }", "/x", "location / { … }", "location / { … }", None, ""),
    ("location / { if ($x) { proxy_pass http://a; } }", "/x", "location / { … }", "if ($x) { … }", None, ""),
    (
        "location @app { proxy_pass http://a; }\nlocation / { try_files $uri @app; }",
        "/x",
        "location / { … }",
        "location @app { … }",
        None,
        "",
    ),
    (
        "location @app { if ($y) { proxy_pass http://a; } }\nlocation / { try_files $uri @app; }",
        "/x",
        "location / { … }",
        "if ($y) { … }",
        None,
        "",
    ),
    (
        "location @app { root /x; }\nlocation / { try_files $uri @app; }",
        "/x",
        "location / { … }",
        None,
        "try_files $uri @app;",
        "try_files falls back to @app (a page, not the app)",
    ),
    (
        "location / { return 301 https://x$request_uri; }",
        "/x",
        "location / { … }",
        None,
        "return 301 https://x$request_uri;",
        "`return 301 https://x$request_uri` answers it",
    ),
    (
        "location / { try_files $uri =404; }",
        "/x",
        "location / { … }",
        None,
        "try_files $uri =404;",
        "try_files finds no file and answers 404",
    ),
    (
        "location / { try_files $uri /index.html; }",
        "/x",
        "location / { … }",
        None,
        "try_files $uri /index.html;",
        "try_files falls back to /index.html (a page, not the app)",
    ),
    (
        "location /s/ { alias /srv/s/; }",
        "/s/a.css",
        "location /s/ { … }",
        None,
        "alias /srv/s/;",
        "alias maps it to the file /srv/s/a.css (404)",
    ),
    (
        "root /var/www;\nlocation /a/ { }",
        "/a/x",
        "location /a/ { … }",
        None,
        "root /var/www;",
        "root maps it to the file /var/www/a/x (404)",
    ),
    (
        "root /var/www;",
        "/x",
        None,
        None,
        "root /var/www;",
        "no location passes it on: root /var/www answers it (404)",
    ),
    (
        "listen 80;",
        "/x",
        None,
        None,
        None,
        "no location passes it on: nginx's default root (html/) answers it (404)",
    ),
    ("return 444;", "/x", None, None, "return 444;", "`return 444` answers it"),
    # proxy_pass in a server-level `if` is not valid nginx (nginx -t refuses it): not a route
    (
        "if ($x) { proxy_pass http://a; }",
        "/x",
        None,
        None,
        None,
        "no location passes it on: nginx's default root (html/) answers it (404)",
    ),
    (
        "root /w;\nlocation /a/ { root /v/; }",
        "/a/b",
        "location /a/ { … }",
        None,
        "root /v/;",
        "root maps it to the file /v/a/b (404)",
    ),
]


@pytest.mark.parametrize(("text", "uri", "location", "proxy", "because", "what"), ROUTES)
def test_route_names_the_location_the_proxy_and_what_answers_instead(
    text: str, uri: str, location: str | None, proxy: str | None, because: str | None, what: str
) -> None:
    found = nginxconf.route(server(text), uri)
    assert (shown(found.location), shown(found.proxy), shown(found.because), found.what) == (
        location,
        proxy,
        because,
        what,
    )
