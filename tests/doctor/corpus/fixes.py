"""Each doctor finding's fix, applied the way its text says, to a corpus case's rendered
nginx.conf (or gunicorn flags) — so a test can prove that the fix makes its check pass."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.doctor import nginxconf
from devstack.doctor.nginxconf import Directive

MAP = "map $http_upgrade $connection_upgrade { default upgrade; '' close; }"
DEV_STATIC = 'etag off; if_modified_since off; add_header Cache-Control "no-store" always;'


@dataclass
class Edit:
    lines: list[str]
    gunicorn: list[str]
    inserts: dict[int, list[str]] = field(default_factory=dict)  # before line N (1-based)
    deletes: set[int] = field(default_factory=set)
    replaces: dict[int, str] = field(default_factory=dict)

    def before(self, line: int, text: str) -> None:
        self.inserts.setdefault(line, []).append(text)

    def into(self, block: Directive, text: str) -> None:
        """Text as the first statement of a block (its header is on block.line)."""
        own = [d for d in block.block or [] if d.file == block.file and d.line > block.line]
        first = own[0].line if own else None
        self.before(first if first is not None else block.line + 1, text)

    def result(self) -> str:
        out: list[str] = []
        for number, line in enumerate(self.lines, 1):
            out += self.inserts.get(number, [])
            if number in self.deletes:
                continue
            out.append(self.replaces.get(number, line))
        out += self.inserts.get(len(self.lines) + 1, [])
        return "\n".join(out) + "\n"


def _header_level(block: Directive) -> Directive:
    """Where the proxy_set_header lines that apply to this block live (a level with any of its
    own inherits none, so a fix goes next to them); never an `if`, where proxy_http_version is
    not allowed."""
    start = block.parent if block.name == "if" and block.parent is not None else block
    for level in start.chain():
        if level.children("proxy_set_header"):
            return level
    return start


def _sio(conf: nginxconf.NginxConf, server: Directive) -> Directive:
    loc = nginxconf.proxy_location(server, "/socket.io/")
    assert loc is not None
    return loc


def _in_main(d: Directive, main: str) -> bool:
    return d.file == main


def fix_upgrade(conf: nginxconf.NginxConf, server: Directive, e: Edit) -> None:
    loc = _sio(conf, server)
    level = _header_level(loc)
    have = {d.args[0].lower() for d in level.effective_all("proxy_set_header") if d.args}
    version = level.effective("proxy_http_version")
    if version is None or version.args[:1] != ["1.1"]:
        e.into(level, "proxy_http_version 1.1;")
    if "upgrade" not in have:
        e.into(level, "proxy_set_header Upgrade $http_upgrade;")
    if "connection" not in have:
        e.into(level, "proxy_set_header Connection $connection_upgrade;")
    if not any(d.name == "map" for d in conf.all("map")):
        http = conf.http()
        assert http is not None
        e.into(http, MAP)


def fix_host(conf: nginxconf.NginxConf, server: Directive, e: Edit, fix: str) -> None:
    loc = _sio(conf, server)
    level = _header_level(loc)
    if "X-Forwarded-Proto" in fix:
        e.into(level, "proxy_set_header X-Forwarded-Proto $scheme;")
        if "Host $http_host" not in fix:
            return
    host = next((d for d in level.effective_all("proxy_set_header") if d.args[0].lower() == "host"), None)
    if host is not None and _in_main(host, conf.main_file):
        e.replaces[host.line] = "proxy_set_header Host $http_host;"
    else:
        e.into(level, "proxy_set_header Host $http_host;")


def fix_buffering(conf: nginxconf.NginxConf, server: Directive, e: Edit) -> None:
    loc = _sio(conf, server)
    e.into(loc.parent if loc.name == "if" and loc.parent is not None else loc, "proxy_buffering off;")


def fix_duplicate(conf: nginxconf.NginxConf, server: Directive, e: Edit) -> None:
    for loc in nginxconf.proxying_locations(server):
        for group in nginxconf.duplicate_headers(loc):
            repeated = [d for d in group[1:] if _in_main(d, conf.main_file)]
            e.deletes.update(d.line for d in repeated)


def fix_alias_sibling(conf: nginxconf.NginxConf, server: Directive, e: Edit, static_uri: str) -> None:
    loc = nginxconf.location_for(server, static_uri)
    assert loc is not None
    alias = loc.child("alias")
    assert alias is not None
    e.replaces[loc.line] = e.lines[loc.line - 1].replace(loc.args[-1], loc.args[-1] + "/", 1)
    e.replaces[alias.line] = e.lines[alias.line - 1].replace(alias.args[0], alias.args[0] + "/", 1)


def fix_static_headers(conf: nginxconf.NginxConf, server: Directive, e: Edit, static_uri: str) -> None:
    loc = nginxconf.location_for(server, static_uri) or server
    e.into(loc, DEV_STATIC)


def fix_served_by_app(conf: nginxconf.NginxConf, server: Directive, e: Edit, static: Path, fix: str) -> None:
    loc = nginxconf.location_for(server, "/static/css/app.css")
    if "replace" in fix and loc is not None and loc.child("proxy_pass") is not None:
        # the static location exists and proxies: its proxy_pass becomes the alias
        proxy = loc.child("proxy_pass")
        assert proxy is not None
        e.replaces[proxy.line] = f"alias {static}/;"
        for header in loc.children("proxy_set_header"):
            e.deletes.add(header.line)
        return
    e.into(server, f"location /static/ {{ alias {static}/; }}")


def fix_explicit_cache(conf: nginxconf.NginxConf, server: Directive, e: Edit, static_uri: str) -> None:
    """expires off; and the development headers, the long Cache-Control gone."""
    loc = nginxconf.location_for(server, static_uri) or server
    for d in loc.children("expires"):
        e.replaces[d.line] = "expires off;"
    for d in loc.children("add_header"):
        if d.args and d.args[0].lower() == "cache-control":
            e.deletes.add(d.line)


def fix_route(conf: nginxconf.NginxConf, server: Directive, e: Edit, fix: str) -> None:
    """The location the fix text spells out, added to the server; the map in http {}."""
    block = next(part for part in fix.split("`") if part.startswith("location "))
    e.into(server, block)
    if not conf.all("map"):
        http = conf.http()
        assert http is not None
        e.into(http, MAP)


def fix_declared(folder: Path, fix: str) -> None:
    """Each FILE:LINE: `OLD` -> `NEW` the fix names, done in the project's file."""
    edits = re.findall(r"([\w./-]+):(\d+): `([^`]*)` -> `([^`]*)`", fix)
    assert edits, fix
    for name, line, old, new in edits:
        path = folder / name
        lines = path.read_text(encoding="utf-8").splitlines()
        number = int(line) - 1
        assert old in lines[number], (path, lines[number], old)
        lines[number] = lines[number].replace(old, new, 1)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def fix_workers(e: Edit) -> None:
    for flag in ("--workers", "-w"):
        if flag in e.gunicorn:
            i = e.gunicorn.index(flag)
            del e.gunicorn[i : i + 2]
    e.gunicorn[:] = [a for a in e.gunicorn if not a.startswith(("--workers=", "-w"))] + ["-w", "1"]


def fix_sync(e: Edit) -> None:
    e.gunicorn += ["-k", "gthread", "--threads", "16"]


Fixer = Callable[[nginxconf.NginxConf, Directive, Edit, dict[str, Any]], None]
# The checks whose fix changes the config or the command line; applied in this order.
FIXERS: dict[str, Fixer] = {
    "nginx.duplicate-header": lambda c, s, e, f: fix_duplicate(c, s, e),
    "nginx.alias-sibling": lambda c, s, e, f: fix_alias_sibling(c, s, e, f["static_uri"]),
    "socketio.upgrade": lambda c, s, e, f: fix_upgrade(c, s, e),
    "socketio.host-port": lambda c, s, e, f: fix_host(c, s, e, f["fix"]),
    "socketio.buffering": lambda c, s, e, f: fix_buffering(c, s, e),
    "static.served-by-app": lambda c, s, e, f: fix_served_by_app(c, s, e, f["static"], f["fix"]),
    "static.explicit-cache": lambda c, s, e, f: fix_explicit_cache(c, s, e, f["static_uri"]),
    "socketio.route": lambda c, s, e, f: fix_route(c, s, e, f["fix"]),
    "net.tls-trust": lambda c, s, e, f: None,  # a doctor option (--cacert / --insecure): the test adds it
    "gunicorn.declared": lambda c, s, e, f: fix_declared(f["project"], f["fix"]),
    "static.heuristic-cache": lambda c, s, e, f: fix_static_headers(c, s, e, f["static_uri"]),
    "static.weak-validator": lambda c, s, e, f: None,  # the same lines as heuristic-cache's
    "gunicorn.workers": lambda c, s, e, f: fix_workers(e),
    "gunicorn.sync-worker": lambda c, s, e, f: fix_sync(e),
}


def apply(
    conf_path: Path, gunicorn: list[str], port: int, found: dict[str, dict[str, Any]], nginx_bin: str | None
) -> tuple[str, list[str]]:
    """The config text and gunicorn flags with every found check's fix applied."""
    conf = nginxconf.load(conf_path, nginx_bin)
    server = conf.server_for(port)
    assert server is not None
    text = conf_path.read_text(encoding="utf-8")
    edit = Edit(text.splitlines(), list(gunicorn))
    if "static.weak-validator" in found and not {
        "static.heuristic-cache",
        "static.served-by-app",
        "static.explicit-cache",
    } & set(found):
        fix_static_headers(conf, server, edit, found["static.weak-validator"]["static_uri"])
    for check_id, fixer in FIXERS.items():
        if check_id in found:
            fixer(conf, server, edit, found[check_id])
    replaced = "replace" in found.get("static.served-by-app", {}).get("fix", "")
    headers = {"static.explicit-cache", "static.weak-validator", "static.heuristic-cache"} & set(found)
    if ("static.explicit-cache" in found and "static.served-by-app" not in found) or (replaced and headers):
        # the static location that stays (or the one whose proxy_pass became an alias)
        fix_static_headers(conf, server, edit, "/static/css/app.css")
    if "static.served-by-app" in found and "static.weak-validator" in found:
        # the new static location gets the development headers the validator's fix asks for
        edit.inserts = {
            k: [t.replace("; }", f"; {DEV_STATIC} }}") if t.startswith("location /static/") else t for t in v]
            for k, v in edit.inserts.items()
        }
    return edit.result(), edit.gunicorn
