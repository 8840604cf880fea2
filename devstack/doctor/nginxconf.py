"""The effective nginx config as a tree of directives, each with its file:line.

Source of truth is `nginx -T` (nginx itself resolves every include and dumps the files it read);
when nginx cannot be run on that config, the files are read from disk with includes resolved here.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from devstack.system import runner

DUMP_MARK = re.compile(r"^# configuration file (.+):$")
# Directives whose values are inherited by inner blocks only when the inner block has none.
ARRAY_DIRECTIVES = ("add_header", "proxy_set_header", "proxy_redirect")


@dataclass
class Directive:
    name: str
    args: list[str]
    file: str
    line: int
    block: list[Directive] | None = None
    parent: Directive | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def text(self) -> str:
        joined = " ".join([self.name, *self.args])
        return joined + (" { … }" if self.block is not None else ";")

    def children(self, name: str) -> list[Directive]:
        return [d for d in (self.block or []) if d.name == name]

    def child(self, name: str) -> Directive | None:
        found = self.children(name)
        return found[-1] if found else None

    def chain(self) -> list[Directive]:
        """This block and its enclosing ones, innermost first."""
        out: list[Directive] = []
        node: Directive | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def effective(self, name: str) -> Directive | None:
        """The directive as it applies here: the innermost level that sets it."""
        for level in self.chain():
            found = level.child(name)
            if found is not None:
                return found
        return None

    def effective_all(self, name: str) -> list[Directive]:
        """add_header / proxy_set_header: only the innermost level that has any counts."""
        for level in self.chain():
            found = level.children(name)
            if found:
                return found
        return []

    def walk(self) -> list[Directive]:
        out: list[Directive] = []
        for d in self.block or []:
            out.append(d)
            out.extend(d.walk())
        return out


@dataclass
class NginxConf:
    root: Directive  # a pseudo-block holding the main file's top level
    source: str  # "nginx -T" | "files"
    main_file: str
    note: str = ""  # why nginx -T could not be used

    def http(self) -> Directive | None:
        return self.root.child("http")

    def servers(self) -> list[Directive]:
        http = self.http()
        return http.children("server") if http is not None else []

    def server_for(self, port: int | None) -> Directive | None:
        servers = self.servers()
        if port is not None:
            for server in servers:
                for listen in server.children("listen"):
                    if listen.args and _listen_port(listen.args[0]) == port:
                        return server
        return servers[0] if servers else None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.root.walk() if d.name == name]


def _listen_port(value: str) -> int | None:
    match = re.search(r"(\d+)$", value.rsplit("]", 1)[-1])
    return int(match.group(1)) if match else None


def listen_port(server: Directive) -> int | None:
    for listen in server.children("listen"):
        if listen.args:
            return _listen_port(listen.args[0])
    return 80


def listen_hosts(server: Directive) -> list[str]:
    hosts = []
    for listen in server.children("listen"):
        if listen.args:
            value = listen.args[0]
            if value.isdigit() or value.startswith("*:"):
                hosts.append("0.0.0.0")
            elif value.startswith("["):
                hosts.append(value[1 : value.index("]")])
            else:
                hosts.append(value.rsplit(":", 1)[0] if ":" in value else value)
    return hosts


# -- parsing ------------------------------------------------------------------------------------


class ParseError(ValueError):
    pass


def tokenize(text: str) -> list[tuple[str, int, bool]]:
    """(token, line, quoted) for words, quoted strings and the ; { } punctuation."""
    tokens: list[tuple[str, int, bool]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in ";{}":
            tokens.append((ch, line, False))
            i += 1
        elif ch in "\"'":
            start_line, quote, i = line, ch, i + 1
            buf = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                    continue
                if text[i] == "\n":
                    line += 1
                buf.append(text[i])
                i += 1
            i += 1
            tokens.append(("".join(buf), start_line, True))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in ";{}\"'":
                if text[i] == "$" and i + 1 < n and text[i + 1] == "{":
                    i = text.find("}", i) + 1 or n
                    continue
                i += 1
            tokens.append((text[start:i], line, False))
    return tokens


class _Parser:
    def __init__(self, files: dict[str, str], conf_dir: str, read_disk: bool) -> None:
        self.files = files
        self.conf_dir = conf_dir
        self.read_disk = read_disk
        self.depth = 0

    def parse_file(self, name: str, parent: Directive) -> list[Directive]:
        text = self.files.get(name)
        if text is None and self.read_disk:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
            self.files[name] = text
        if text is None:
            return []
        tokens = tokenize(text)
        _, items = self._block(tokens, 0, name, parent, top=True)
        return items

    def _block(
        self, tokens: list[tuple[str, int, bool]], pos: int, file: str, parent: Directive, top: bool
    ) -> tuple[int, list[Directive]]:
        items: list[Directive] = []
        while pos < len(tokens):
            word, line, quoted = tokens[pos]
            if word == "}" and not quoted:
                if top:
                    raise ParseError(f"{file}:{line}: unexpected }}")
                return pos + 1, items
            args: list[str] = []
            pos += 1
            while pos < len(tokens) and (tokens[pos][2] or tokens[pos][0] not in ";{}"):
                args.append(tokens[pos][0])
                pos += 1
            if pos >= len(tokens):
                raise ParseError(f"{file}:{line}: {word} is not terminated by ; or {{")
            end = tokens[pos][0]
            directive = Directive(word, args, file, line, parent=parent)
            if end == "{":
                directive.block = []
                pos, directive.block = self._block(tokens, pos + 1, file, directive, top=False)
                items.append(directive)
            elif word == "include" and args:
                pos += 1
                for included in self._resolve(args[0]):
                    self.depth += 1
                    if self.depth > 20:
                        raise ParseError(f"{file}:{line}: include nesting too deep")
                    items.extend(self.parse_file(included, parent))
                    self.depth -= 1
            else:
                pos += 1
                items.append(directive)
        if not top:
            raise ParseError(f"{file}: missing }}")
        return pos, items

    def _resolve(self, pattern: str) -> list[str]:
        full = pattern if os.path.isabs(pattern) else os.path.join(self.conf_dir, pattern)
        if self.read_disk:
            return sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        import fnmatch

        return sorted(f for f in self.files if fnmatch.fnmatch(f, full))


def parse_text(files: dict[str, str], main: str, read_disk: bool = False) -> Directive:
    root = Directive("main", [], main, 0, block=[])
    parser = _Parser(dict(files), os.path.dirname(main), read_disk)
    root.block = parser.parse_file(main, root)
    return root


def split_dump(stdout: str) -> dict[str, str]:
    """nginx -T output -> {file name: contents}."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        match = DUMP_MARK.match(line)
        if match:
            current = files.setdefault(match.group(1), [])
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def load(
    conf: Path, nginx: str | None, prefix: Path | None = None, run: runner.Run = runner.run
) -> NginxConf:
    """The effective config: `nginx -T` when it runs, else the files on disk."""
    conf = conf.resolve()
    note = ""
    if nginx is not None:
        argv = [nginx, "-T", "-c", str(conf), "-e", "stderr"]
        if prefix is not None:
            argv[1:1] = ["-p", str(prefix)]
        result = run(argv, timeout=30)
        files = split_dump(result.out)
        if result.ok and str(conf) in files:
            return NginxConf(parse_text(files, str(conf)), "nginx -T", str(conf))
        note = result.first_error("emerg", "crit")
    else:
        note = "nginx is not installed here"
    return NginxConf(parse_text({}, str(conf), read_disk=True), "files", str(conf), note)


# -- location matching (nginx's rules: ngx_http_core_find_location) ------------------------------


def _locations(block: Directive) -> list[Directive]:
    return [loc for loc in block.children("location") if loc.args and not loc.args[0].startswith("@")]


def _find(block: Directive, uri: str) -> tuple[Directive | None, bool]:
    """(location, final) at this level: `=` wins at once; the longest prefix is remembered and its
    nested locations searched; `^~` on that prefix stops regexes; else the first matching regex
    of this level (in config order) wins, searched for nested locations in turn."""
    best: Directive | None = None
    best_len = -1
    regexes: list[Directive] = []
    for loc in _locations(block):
        if len(loc.args) >= 2 and loc.args[0] == "=":
            if loc.args[1] == uri:
                return loc, True
            continue
        if len(loc.args) >= 2 and loc.args[0] in ("~", "~*"):
            regexes.append(loc)
            continue
        prefix = loc.args[1] if loc.args[0] == "^~" and len(loc.args) >= 2 else loc.args[0]
        if uri.startswith(prefix) and len(prefix) > best_len:
            best, best_len = loc, len(prefix)
    result = best
    if best is not None:
        if _locations(best):
            inner, final = _find(best, uri)
            if inner is not None:
                result = inner
                if final:
                    return inner, True
        if best.args[0] == "^~":
            return result, True
    for loc in regexes:
        flags = re.IGNORECASE if loc.args[0] == "~*" else 0
        try:
            matched = re.search(loc.args[1], uri, flags)
        except re.error:
            continue
        if matched:
            inner, _ = _find(loc, uri) if _locations(loc) else (None, False)
            return inner or loc, True
    return result, False


def location_for(server: Directive, uri: str) -> Directive | None:
    return _find(server, uri)[0]


def named_location(server: Directive, name: str) -> Directive | None:
    for loc in server.walk():
        if loc.name == "location" and loc.args == [name]:
            return loc
    return None


def fallback_named(server: Directive, loc: Directive) -> Directive | None:
    """The named location a request falls back to when no file matches: try_files' last
    argument or an error_page's `@name` (the classic `try_files $uri @proxy_to_app`)."""
    try_files = loc.effective("try_files")
    if try_files is not None and try_files.args and try_files.args[-1].startswith("@"):
        return named_location(server, try_files.args[-1])
    for level in loc.chain():
        for page in level.children("error_page"):
            if page.args and page.args[-1].startswith("@"):
                return named_location(server, page.args[-1])
        if level.name == "server":
            break
    return None


def _proxying_if(loc: Directive) -> Directive | None:
    """`if (!-f $request_filename) { proxy_pass ...; }` inside a location: the block that proxies
    what is not a file (its headers are inherited from the location, as nginx does)."""
    for block in loc.children("if"):
        if block.child("proxy_pass") is not None:
            return block
    return None


def proxy_location(server: Directive, uri: str) -> Directive | None:
    """The block that finally proxies a URI that is not a file on disk (/socket.io/, /):
    the location nginx matches (the server itself when none does), its `if` block that
    proxies, or the named location its try_files / error_page falls back to."""
    loc = location_for(server, uri) or server
    if loc.effective("proxy_pass") is not None and loc is not server:
        return loc
    inner = _proxying_if(loc)
    if inner is not None:
        return inner
    named = fallback_named(server, loc)
    if named is not None and (named.effective("proxy_pass") is not None or _proxying_if(named)):
        return _proxying_if(named) or named
    return loc if loc is not server else None


def proxy_target(http: Directive | None, proxy_pass: Directive) -> str | None:
    """The app server a proxy_pass reaches, as a URL: http://host:port or http://unix:/path:
    (an upstream block resolved to its first server). None when it holds variables."""
    if not proxy_pass.args or "$" in proxy_pass.args[0]:
        return None
    target = proxy_pass.args[0]
    scheme, _, rest = target.partition("://")
    if rest.startswith("unix:"):
        return "http://unix:" + rest[len("unix:") :].split(":", 1)[0] + ":"
    host = rest.split("/", 1)[0]
    for upstream in http.children("upstream") if http is not None else []:
        if upstream.args and upstream.args[0] == host:
            servers = upstream.children("server")  # the first, as the docstring says (child() is the last)
            server = servers[0] if servers else None
            if server is None or not server.args:
                return None
            address = server.args[0]
            if address.startswith("unix:"):
                return "http://unix:" + address[len("unix:") :] + ":"
            host = address
            break
    if ":" not in host:
        host += ":443" if scheme == "https" else ":80"
    return f"{'https' if scheme == 'https' else 'http'}://{host.replace('localhost', '127.0.0.1')}"


def location_prefix(loc: Directive) -> str:
    if len(loc.args) >= 2 and loc.args[0] in ("=", "^~", "~", "~*"):
        return loc.args[1]
    return loc.args[0] if loc.args else ""


def is_regex(loc: Directive) -> bool:
    return bool(loc.args) and loc.args[0] in ("~", "~*")


def mapped_path(loc: Directive, uri: str) -> tuple[str, Directive] | None:
    """The file nginx opens for uri in this location (alias or root), and the directive used."""
    alias = loc.child("alias")
    if alias is not None and alias.args and not is_regex(loc):
        return alias.args[0] + uri[len(location_prefix(loc)) :], alias
    root = loc.effective("root")
    if root is not None and root.args:
        return root.args[0].rstrip("/") + uri, root
    return None


def duplicate_headers(loc: Directive) -> list[list[Directive]]:
    """proxy_set_header names set more than once where they apply here: nginx sends each one,
    so the app sees the header twice (gunicorn answers 400 to a second Host)."""
    seen: dict[str, list[Directive]] = {}
    for d in loc.effective_all("proxy_set_header"):
        if len(d.args) >= 2:
            seen.setdefault(d.args[0].lower(), []).append(d)
    return [group for group in seen.values() if len(group) > 1]


def proxying_locations(server: Directive) -> list[Directive]:
    """Every location of a server (nested and named included) that proxies to an app."""
    return [d for d in server.walk() if d.name in ("location", "if") and d.child("proxy_pass") is not None]


# Directives that hand a request to an app server (any protocol: the request leaves nginx).
PASSES = ("proxy_pass", "uwsgi_pass", "fastcgi_pass", "scgi_pass", "grpc_pass")


@dataclass
class Route:
    """Where nginx sends a URI that is no file: the location it picks, and the block that passes
    it to an app (None when nothing does: `because` is the directive that answers instead)."""

    location: Directive | None  # the location nginx picks (None: none matches, the server answers)
    proxy: Directive | None  # the block that passes it on (the location, its `if`, a named one)
    because: Directive | None  # return / try_files / alias / root: what answers instead
    what: str  # one phrase: "try_files falls back to /index.html", "return 404", ...


def passes(block: Directive) -> Directive | None:
    for name in PASSES:
        found = block.child(name)
        if found is not None:
            return found
    return None


def route(server: Directive, uri: str) -> Route:
    loc = location_for(server, uri)
    block = loc or server
    if loc is not None and passes(loc) is not None:
        return Route(loc, loc, None, "")
    inner = _proxying_if(block) if loc is not None else None
    if inner is not None:
        return Route(loc, inner, None, "")
    named = fallback_named(server, block)
    if named is not None:
        target = _proxying_if(named) or (named if passes(named) is not None else None)
        if target is not None:
            return Route(loc, target, None, "")
    ret = block.child("return")
    if ret is not None and ret.args:
        return Route(loc, None, ret, f"`return {' '.join(ret.args)}` answers it")
    try_files = block.effective("try_files")
    if try_files is not None and try_files.args:
        last = try_files.args[-1]
        if last.startswith("="):
            what = f"try_files finds no file and answers {last[1:]}"
        else:
            what = f"try_files falls back to {last} (a page, not the app)"
        return Route(loc, None, try_files, what)
    mapped = mapped_path(block, uri) if loc is not None else None
    if mapped is not None:
        path, directive = mapped
        return Route(loc, None, directive, f"{directive.name} maps it to the file {path} (404)")
    root = server.effective("root")
    where = f"root {root.args[0]}" if root is not None and root.args else "nginx's default root (html/)"
    return Route(loc, None, root, f"no location passes it on: {where} answers it (404)")
