"""nginx: the config rules (from `nginx -T`) and the active probes that confirm them."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.doctor import nginxconf
from devstack.doctor.checks import config, needs_nginx, needs_public
from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check
from devstack.stack import probes
from devstack.system import fsinfo


def _static_loc(ctx: Context) -> Outcome | nginxconf.Directive:
    skip = needs_nginx(ctx)
    if skip is not None:
        return skip
    loc = ctx.static_location
    if loc is None or nginxconf.location_prefix(loc) == "/":
        return na(f"no nginx location serves {ctx.t.static_prefix} from disk")
    return loc


@check(
    "nginx.sendfile-shared-fs",
    "sendfile is off when static sits on a shared folder",
    "error",
    '`sendfile off;` (devstack\'s server.sendfile = "auto" does this on shared folders)',
    refs=("Vagrant docs: VirtualBox synced folders caveats", "hashicorp/vagrant#351"),
)
def sendfile_shared(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    fs = ctx.static_fstype
    directive = got.effective("sendfile")
    on = directive is not None and directive.args[:1] == ["on"]
    ev = [Evidence("file", f"{ctx.t.static_dir} is on {fs}", str(ctx.t.static_dir))]
    if directive is not None:
        ev.insert(0, config(directive))
    if not fsinfo.is_shared(fs):
        state = "on" if on else "off"
        return ok(f"static is on {fs}, not a shared folder (sendfile {state} is fine)", *ev)
    if on:
        return Outcome(
            "error",
            f"sendfile on while static is on {fs}: nginx serves stale or truncated files after edits",
            ev,
        )
    return ok(f"sendfile off on a {fs} folder", *ev)


@check(
    "nginx.open-file-cache",
    "No open_file_cache in development",
    "warning",
    "remove open_file_cache (and open_file_cache_errors) from the development config",
)
def open_file_cache(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    directive = got.effective("open_file_cache")
    if directive is None or directive.args[:1] == ["off"]:
        return ok("open_file_cache is off")
    errors = got.effective("open_file_cache_errors")
    ev = [config(directive)] + ([config(errors)] if errors is not None else [])
    valid = got.effective("open_file_cache_valid")
    secs = valid.args[0] if valid is not None and valid.args else "60s"
    return Outcome(
        "warning",
        "open_file_cache keeps file descriptors and stat results for "
        f"{secs}: a file replaced by rename (how editors save) is served old, new "
        "files may 404 for that long",
        ev,
    )


def _known_outside_file(static_dir: Path) -> Path | None:
    """A file next to the static folder, to test whether /static../ escapes it."""
    parent = static_dir.parent
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return None
    for name in names:
        candidate = parent / name
        if candidate.is_file() and not name.startswith(".") and candidate != static_dir:
            return candidate
    return None


@check(
    "nginx.alias-traversal",
    "No alias traversal (/static../ cannot leave the folder)",
    "error",
    "end the location with / like the alias: `location /static/ { alias /path/static/; }`",
    refs=("gixy: alias_traversal",),
)
def alias_traversal(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    alias = got.child("alias")
    prefix = nginxconf.location_prefix(got)
    if alias is None or nginxconf.is_regex(got):
        return na("the static location uses no alias")
    if prefix.endswith("/") or not alias.args[0].endswith("/"):
        return ok(f"location {prefix} and alias {alias.args[0]}: no traversal", config(got))
    ev = [config(got), config(alias)]
    # Active: fetch a file beside the static folder through the hole.
    if ctx.t.static_dir is not None and needs_public(ctx) is None:
        outside = _known_outside_file(ctx.t.static_dir)
        if outside is not None:
            url = ctx.t.public_url.rstrip("/") + prefix + "../" + outside.name
            resp = ctx.get(url)
            if (
                resp is not None
                and resp.status == 200
                and probes.sha256_bytes(resp.body) == probes.sha256_file(outside)
            ):
                ev.append(
                    Evidence("probe", f"GET {prefix}../{outside.name} -> 200, the bytes of {outside}", url)
                )
                return Outcome(
                    "error",
                    f"{prefix}../{outside.name} downloads {outside}: location "
                    f"{prefix} lacks the trailing / its alias has",
                    ev,
                )
            ev.append(
                Evidence(
                    "probe", f"GET {prefix}../{outside.name} -> {resp.status if resp else 'no answer'}", url
                )
            )
    return Outcome(
        "error",
        f"location {prefix} without a trailing / and alias {alias.args[0]} "
        "with one: /static../ reaches the parent folder",
        ev,
    )


def _mapping(ctx: Context, loc: nginxconf.Directive) -> tuple[str, nginxconf.Directive] | None:
    if ctx.sample_rel is None:
        return None
    return nginxconf.mapped_path(loc, ctx.static_uri)


@check(
    "nginx.alias-slash",
    "location and alias agree on the trailing /",
    "error",
    "end both with /: `location /static/ { alias /path/static/; }`",
)
def alias_slash(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    alias = got.child("alias")
    if alias is None or nginxconf.is_regex(got):
        return na("the static location uses no alias")
    prefix = nginxconf.location_prefix(got)
    if prefix.endswith("/") == alias.args[0].endswith("/") or not prefix.endswith("/"):
        return ok(f"location {prefix} and alias {alias.args[0]} agree")
    ev = [config(got), config(alias)]
    mapped = _mapping(ctx, got)
    if mapped is not None:
        ev.append(
            Evidence(
                "probe",
                f"{ctx.static_uri} -> {mapped[0]} "
                f"({'exists' if Path(mapped[0]).is_file() else 'no such file'})",
            )
        )
    resp = ctx.public_static() if needs_public(ctx) is None else None
    if resp is not None:
        ev.append(
            Evidence("probe", f"GET {ctx.static_uri} -> HTTP {resp.status}", ctx.public_static_url or "")
        )
    return Outcome(
        "error",
        f"location {prefix} ends with / but alias {alias.args[0]} does not: "
        f"nginx opens {mapped[0] if mapped else 'a path glued to the folder name'} "
        "and every static file 404s",
        ev,
    )


@check(
    "nginx.root-for-alias",
    "root is not used where alias was meant",
    "error",
    "use `alias /path/static/;` in the location, or set root to the PARENT of the static folder",
)
def root_for_alias(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    if got.child("alias") is not None:
        return ok("the static location uses alias")
    mapped = _mapping(ctx, got)
    if mapped is None:
        return na("the static location sets neither alias nor root")
    path, root = mapped
    if Path(path).is_file():
        return ok(f"root {root.args[0]} maps {ctx.static_uri} to an existing file")
    prefix = nginxconf.location_prefix(got).strip("/")
    ev = [config(got), config(root), Evidence("probe", f"{ctx.static_uri} -> {path} (no such file)")]
    if prefix and root.args[0].rstrip("/").endswith("/" + prefix.split("/")[-1]):
        return Outcome(
            "error",
            f"root {root.args[0]} already ends in /{prefix}: nginx looks in "
            f"{root.args[0].rstrip('/')}/{prefix}/ (root appends the whole URI)",
            ev,
        )
    return Outcome("error", f"root {root.args[0]} maps {ctx.static_uri} to {path}, which does not exist", ev)


@check(
    "nginx.autoindex",
    "No directory listing for static (autoindex off)",
    "warning",
    "`autoindex off;` (or leave it out: off is the default)",
)
def autoindex(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    directive = got.effective("autoindex")
    if directive is None or directive.args[:1] != ["on"]:
        return ok("autoindex is off")
    ev = [config(directive)]
    if needs_public(ctx) is None:
        url = ctx.t.public_url.rstrip("/") + ctx.t.static_prefix
        resp = ctx.get(url)
        if resp is not None:
            listed = b"Index of" in resp.body
            ev.append(
                Evidence(
                    "probe",
                    f"GET {ctx.t.static_prefix} -> HTTP {resp.status}"
                    f"{', a directory listing' if listed else ''}",
                    url,
                )
            )
    return Outcome("warning", "autoindex on: anyone who reaches the port can list the static folder", ev)


@check(
    "nginx.redirect-port",
    "Redirects stay on the public host:port",
    "warning",
    "`absolute_redirect off;` in http{} and `proxy_set_header Host $http_host;` "
    "(+ `proxy_redirect` for the app port)",
    refs=("doctor-catalog N6, P1",),
)
def redirect_port(ctx: Context) -> Outcome:
    skip = needs_public(ctx)
    if skip is not None:
        return skip
    if ctx.sample_rel is None or "/" not in ctx.sample_rel:
        return na("no static subfolder to request without its trailing slash")
    folder = ctx.sample_rel.rsplit("/", 1)[0]
    url = ctx.t.public_url.rstrip("/") + ctx.t.static_prefix + folder
    resp = ctx.get(url)
    if resp is None or resp.status not in (301, 302, 307, 308):
        return na(
            f"GET {ctx.t.static_prefix}{folder} does not redirect (HTTP {resp.status if resp else 'none'})"
        )
    location = resp.header("location") or ""
    public_port = probes.split_url(ctx.t.public_url)[1]
    ev = [Evidence("header", f"Location: {location}", url)]
    if location.startswith("/"):
        return ok(f"relative redirect ({location}): works through any port forward", *ev)
    port = probes.split_url(location)[1]
    if port == public_port:
        return ok(f"redirect stays on port {port}", *ev)
    if ctx.server is not None:
        directive = ctx.server.effective("absolute_redirect")
        if directive is not None:
            ev.append(config(directive))
    return Outcome(
        "warning",
        f"redirect to {location}: port {port}, not the public port "
        f"{public_port} — the browser lands on a dead or wrong port",
        ev,
    )


@check(
    "nginx.alias-sibling",
    "A static location without / does not expose sibling folders",
    "warning",
    "end both with /: `location /static/ { alias /path/static/; }`",
    refs=("gixy: alias_traversal (the partial-path variant)",),
)
def alias_sibling(ctx: Context) -> Outcome:
    got = _static_loc(ctx)
    if isinstance(got, Outcome):
        return got
    alias = got.child("alias")
    if alias is None or not alias.args or nginxconf.is_regex(got):
        return na("the static location uses no alias")
    prefix = nginxconf.location_prefix(got)
    if prefix.endswith("/") or alias.args[0].endswith("/"):
        return ok(f"location {prefix} and alias {alias.args[0]}: no partial-name match")
    # /static_private/x matches `location /static` and opens <alias>_private/x.
    base = Path(alias.args[0])
    ev = [config(got), config(alias)]
    siblings = []
    try:
        siblings = sorted(
            p.name for p in base.parent.iterdir() if p.name.startswith(base.name) and p.name != base.name
        )
    except OSError:
        pass
    if siblings:
        ev.append(
            Evidence("file", f"siblings served through {prefix}: {', '.join(siblings[:5])}", str(base.parent))
        )
    example = prefix + (siblings[0][len(base.name) :] if siblings else "_private") + "/…"
    return Outcome(
        "warning",
        f"location {prefix} and alias {alias.args[0]} both lack the trailing /: {example} is served from "
        f"{alias.args[0]}{example[len(prefix) :]} — every folder whose name starts with "
        f"{base.name} is public",
        ev,
    )


@check(
    "nginx.duplicate-header",
    "No proxy header is set twice",
    "error",
    "keep one `proxy_set_header` per header in each location (remove the repeated one, often "
    "brought in twice by `include proxy_params`)",
    refs=("gunicorn: a second Host header is answered 400",),
)
def duplicate_header(ctx: Context) -> Outcome:
    skip = needs_nginx(ctx)
    if skip is not None:
        return skip
    assert ctx.server is not None
    found: list[list[nginxconf.Directive]] = []
    for loc in nginxconf.proxying_locations(ctx.server):
        for group in nginxconf.duplicate_headers(loc):
            if not any(group[0] is g[0] for g in found):
                found.append(group)
    if not found:
        return ok("each proxied header is set once")
    ev = [config(d) for group in found for d in group]
    names = sorted({g[0].args[0] for g in found}, key=str.lower)
    host = any(g[0].args[0].lower() == "host" for g in found)
    if host and needs_public(ctx) is None:
        resp = ctx.get(ctx.t.public_url.rstrip("/") + "/")
        if resp is not None:
            ev.append(Evidence("probe", f"GET / -> HTTP {resp.status}", ctx.t.public_url))
    if host:
        return Outcome(
            "error",
            "proxy_set_header Host is set twice: nginx sends two Host headers and gunicorn "
            "answers 400 Bad Request to every proxied request",
            ev,
        )
    return Outcome(
        "warning",
        f"set twice: {', '.join(names)} — the app receives the header twice (joined or the first one wins)",
        ev,
    )
