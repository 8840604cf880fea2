"""Static files: does the browser get the bytes on disk, and may it keep an old copy?"""

from __future__ import annotations

import re
import time
import urllib.parse
from pathlib import Path

from devstack.doctor import nginxconf, nginxproc
from devstack.doctor.checks import config, needs_nginx, needs_public, needs_static, public_static_200
from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, header, na, ok
from devstack.doctor.registry import check
from devstack.stack import httpcache

DEV_HEADERS = 'add_header Cache-Control "no-store" always; expires off; (or expires -1; for no-cache)'


def _cache_config(ctx: Context) -> list[Evidence]:
    """The directives in the static location that set caching headers."""
    loc = ctx.static_location
    if loc is None:
        return []
    found = [config(d) for d in (loc.effective("expires"),) if d is not None]
    found += [
        config(d)
        for d in loc.effective_all("add_header")
        if d.args and d.args[0].lower() in ("cache-control", "expires")
    ]
    return found


@check(
    "static.ladder",
    "Static files reach the browser byte-identical to disk",
    "error",
    "fix the first layer that differs (see the finding); `devstack up` proves this on every edit",
    refs=("doctor-catalog: hash ladder",),
)
def ladder(ctx: Context) -> Outcome:
    skip = needs_static(ctx)
    if skip is not None:
        return skip
    if ctx.sample is None:
        return na("no static folder to compare with (pass --static-dir)")
    lad = ctx.ladder
    assert lad is not None
    ev = [
        Evidence("probe", f"{r.name}: {r.sha[:12] or r.detail or '-'}", r.where)
        for r in lad.rungs
        if not r.skipped
    ]
    reached = [r for r in lad.rungs[1:] if not r.skipped and (r.status is not None or r.name == "guest")]
    public = lad.rungs[-1]
    bad = lad.first_bad
    if public.sha == lad.disk.sha:
        if bad is not None and bad.name == "app server":
            return Outcome(
                "warning",
                f"{lad.relpath}: the app server serves other bytes "
                f"({bad.detail}) — harmless while nginx serves static, wrong if it "
                "ever falls through",
                ev,
                "point Flask's static_folder at the same folder nginx serves",
            )
        layers = ", ".join(r.name for r in reached)
        return ok(f"{lad.relpath}: disk, {layers} all serve the same sha256", *ev)
    assert bad is not None
    layer = bad.name
    nginx_is_public = not any(r.name == "nginx" and not r.skipped for r in lad.rungs)
    if layer == "public URL" and nginx_is_public:
        layer = "nginx (at the public URL)"
    what = f"HTTP {bad.status}" if bad.status not in (None, 200) else f"sha256 {bad.sha[:12]}"
    if bad.status not in (None, 200) and (bad.name == "nginx" or nginx_is_public):
        # A refusal, not other bytes: say why from nginx's own error log, the permissions of
        # the path it opens and the config line that maps the URL.
        why, more, fix = refusal(ctx, bad.status or 0)
        return Outcome(
            "error",
            f"{lad.relpath}: {layer} answers {what} — {why}",
            ev + more,
            fix,
        )
    hint = {
        "guest": "the VM's copy is behind the host's: the synced folder does not sync "
        "(rsync without `vagrant rsync-auto`, or an NFS attribute cache)",
        "nginx": "nginx serves other bytes than the disk: sendfile on a shared folder, "
        "open_file_cache, or alias/root pointing elsewhere",
        "public URL": "nginx serves the right bytes but the public URL does not: something "
        "between them (port forward to another machine, a proxy cache)",
    }.get(
        bad.name,
        "nginx serves other bytes than the disk: sendfile on a shared folder, "
        "open_file_cache, or alias/root pointing elsewhere",
    )
    return Outcome(
        "error",
        f"{lad.relpath}: first layer that differs from disk "
        f"({lad.disk.sha[:12]}) is {layer}: {what} — {hint}",
        ev,
    )


@check(
    "static.explicit-cache",
    "No explicit long freshness on static (expires / max-age)",
    "error",
    "development: " + DEV_HEADERS + " in the static location",
    refs=("RFC 9111 4.2.1", "Flask-SocketIO deployment docs copy `expires 30d`"),
)
def explicit_cache(ctx: Context) -> Outcome:
    resp = public_static_200(ctx)
    if isinstance(resp, Outcome):
        return resp
    fresh = httpcache.freshness(resp.headers)
    if fresh.kind != "explicit":
        said = fresh.header or "no Cache-Control or Expires"
        return ok(
            f"{said}: no explicit freshness, the browser does not keep it blindly",
            header("Cache-Control", resp.header("cache-control"), ctx.public_static_url or ""),
        )
    ev = [Evidence("header", fresh.header, ctx.public_static_url or ""), *_cache_config(ctx)]
    return Outcome(
        "error",
        f"{fresh.header} — a browser keeps the old copy for "
        f"{httpcache.human_seconds(fresh.seconds)} without asking; edits do not show "
        "even after a restart",
        ev,
    )


@check(
    "static.heuristic-cache",
    "No heuristic caching (Last-Modified without Cache-Control)",
    "warning",
    "send `Cache-Control: no-cache` (or no-store) for static in development",
    refs=("RFC 9111 4.2.2",),
)
def heuristic_cache(ctx: Context) -> Outcome:
    resp = public_static_200(ctx)
    if isinstance(resp, Outcome):
        return resp
    fresh = httpcache.freshness(resp.headers)
    if fresh.kind != "heuristic":
        return ok(
            "the response says how long it may be cached",
            header("Cache-Control", resp.header("cache-control")),
        )
    ev = [
        header("Last-Modified", resp.header("last-modified"), ctx.public_static_url or ""),
        header("Date", resp.header("date")),
        Evidence("header", "no Cache-Control, no Expires"),
    ]
    return Outcome(
        "warning",
        "Last-Modified with no Cache-Control: browsers may reuse the file "
        f"for ~{httpcache.human_seconds(fresh.seconds)} (10 % of its age) without "
        "asking",
        ev,
    )


@check(
    "static.weak-validator",
    "No stale-304 risk from mtime+size validators",
    "warning",
    "development: `etag off; if_modified_since off;` plus Cache-Control no-store in the static "
    "location (devstack's template does this)",
)
def weak_validator(ctx: Context) -> Outcome:
    resp = public_static_200(ctx)
    if isinstance(resp, Outcome):
        return resp
    etag = resp.header("etag")
    kind = httpcache.etag_kind(etag)
    if not httpcache.freshness(resp.headers).stored:
        return ok("no-store: nothing is revalidated, so no 304 can hand back an old copy")
    url = ctx.public_static_url or ""
    if kind not in ("nginx", "werkzeug"):
        modified = resp.header("last-modified")
        if etag is None and modified:
            # No ETag: the validator is Last-Modified, whole seconds only.
            again = ctx.get(url, {"If-Modified-Since": modified})
            if again is not None and again.status == 304:
                return Outcome(
                    "warning",
                    "Last-Modified is the only validator and has 1-second "
                    "resolution: a second save within the same second is answered "
                    "304 and the browser keeps its old copy",
                    [
                        header("Last-Modified", modified, url),
                        Evidence("probe", f"If-Modified-Since: {modified} -> HTTP 304", url),
                    ],
                )
        return ok("no mtime-based validator the server would answer 304 to", header("ETag", etag))
    # Prove the server answers 304 to that validator.
    again = ctx.get(url, {"If-None-Match": etag or ""})
    status = again.status if again is not None else 0
    ev = [header("ETag", etag, url), Evidence("probe", f"If-None-Match: {etag} -> HTTP {status}", url)]
    return Outcome(
        "warning",
        f"ETag {etag} is built from mtime and size ({kind}): two saves in "
        "one second with the same size keep the ETag, and the browser gets 304 for "
        "its old copy",
        ev,
    )


@check(
    "static.served-by-app",
    "Static files are served by nginx, not by gunicorn",
    "warning",
    "add `location <prefix> { alias <static dir>/; }` (both ending in /) to the nginx server",
    refs=("doctor-catalog S10",),
)
def served_by_app(ctx: Context) -> Outcome:
    skip = needs_static(ctx)
    if skip is not None:
        return skip
    resp = ctx.public_static()
    if resp is None:
        return na("no answer for the static file")
    etag = resp.header("etag")
    kind = httpcache.etag_kind(etag)
    app_cc = resp.header("cache-control") or ""
    # nginx hides the upstream's Server header: the ETag format and Flask's no-cache tell.
    if kind == "werkzeug" or (
        "no-cache" in app_cc
        and kind != "nginx"
        and ctx.static_location is not None
        and ctx.static_location.effective("proxy_pass") is not None
    ):
        ev = [
            header("ETag", etag, ctx.public_static_url or ""),
            header("Cache-Control", resp.header("cache-control")),
        ]
        loc = ctx.static_location
        fix = ""
        if loc is not None:
            ev.append(config(loc))
            proxy = loc.child("proxy_pass")
            same = nginxconf.location_prefix(loc).rstrip("/") == ctx.t.static_prefix.rstrip("/")
            if proxy is not None and same and not nginxconf.is_regex(loc):
                # Adding a second `location /static/` would be a duplicate nginx refuses to start with.
                folder = f"{ctx.t.static_dir}/" if ctx.t.static_dir else "<static dir>/"
                fix = (
                    f"in `location {' '.join(loc.args)}` ({loc.where}) replace `{proxy.text()}` with "
                    f"`alias {folder};` (both ending in /; its proxy_set_header lines go too)"
                )
        return Outcome(
            "warning",
            f"{ctx.static_uri} is answered by the app server (Werkzeug ETag "
            f"{etag}): nginx's static location does not match it",
            ev,
            fix,
        )
    return ok(f"served by nginx ({'ETag ' + str(etag) if etag else 'no Werkzeug ETag'})")


@check(
    "static.flask-max-age",
    "Flask does not cache static for hours (SEND_FILE_MAX_AGE_DEFAULT)",
    "warning",
    "app.config['SEND_FILE_MAX_AGE_DEFAULT'] = None (the Flask >= 2.0 default) or 0 in development",
    refs=("Flask config: SEND_FILE_MAX_AGE_DEFAULT",),
)
def flask_max_age(ctx: Context) -> Outcome:
    skip = needs_static(ctx)
    if skip is not None:
        return skip
    resp = ctx.app_static()
    if resp is None:
        return na("the app server is unknown or does not answer")
    if resp.status != 200:
        return na(f"the app server does not serve {ctx.static_uri} (HTTP {resp.status})")
    fresh = httpcache.freshness(resp.headers)
    if fresh.kind == "explicit":
        where = "" if ctx.app_url is None else ctx.app_url + ctx.static_uri
        return Outcome(
            "warning",
            f"the app server sends {fresh.header} for static "
            f"({httpcache.human_seconds(fresh.seconds)}): whenever Flask serves "
            "static, browsers keep old copies",
            [Evidence("header", fresh.header, where)],
        )
    return ok(f"Flask sends {fresh.header or 'no max-age'} for static")


@check(
    "static.clock-skew",
    "No clock skew: Last-Modified is not in the future",
    "warning",
    "sync the clocks (NTP; VirtualBox: the guest additions' timesync threshold); "
    "`touch` the files that carry a future mtime",
)
def clock_skew(ctx: Context) -> Outcome:
    skip = needs_static(ctx)
    if skip is not None:
        return skip
    resp = ctx.public_static()
    if resp is None or resp.status != 200:
        return na("the static file did not answer 200")
    date = httpcache.http_date(resp.header("date"))
    modified = httpcache.http_date(resp.header("last-modified"))
    ev = [
        header("Date", resp.header("date"), ctx.public_static_url or ""),
        header("Last-Modified", resp.header("last-modified")),
    ]
    if date is not None and abs(date - time.time()) > 5:
        return Outcome(
            "warning",
            f"the server's clock is {date - time.time():+.0f} s off this "
            "machine's: mtimes and caches disagree between host and server",
            ev,
        )
    if modified is not None and date is not None and modified > date + 1:
        return Outcome(
            "warning",
            f"Last-Modified is {modified - date:.0f} s in the future: the "
            "file's mtime is ahead of the server clock, so watchers and caches "
            "misjudge its age",
            ev,
        )
    if modified is None:
        return ok("no Last-Modified to compare")
    return ok("Last-Modified is not in the future", *ev)


BUSTED = re.compile(r"[?&](v|ver|version|h|hash)=|[.-][0-9a-f]{8,}\.", re.I)


@check(
    "static.cache-busting",
    "Asset URLs carry a version or content hash",
    "info",
    "put a content hash in asset URLs (Flask-Assets, a build step, or ?v=<hash>) before "
    "sending long cache lifetimes in production",
)
def cache_busting(ctx: Context) -> Outcome:
    skip = needs_public(ctx)
    if skip is not None:
        return skip
    urls = [u for u in ctx.page_assets() if urllib.parse.urlsplit(u).path.startswith(ctx.t.static_prefix)]
    if not urls:
        return na("the index page links no static assets (or does not answer 200)")
    fixed = [u for u in urls if not BUSTED.search(u)]
    if not fixed:
        return ok(f"all {len(urls)} asset URLs are versioned")
    resp = ctx.public_static()
    if resp is not None and resp.status == 200 and httpcache.freshness(resp.headers).kind == "none":
        return ok(
            f"{len(fixed)} asset URLs are fixed, but static is never kept without asking "
            "(fine in development)",
            header("Cache-Control", resp.header("cache-control")),
        )
    return Outcome(
        "info",
        f"{len(fixed)} of {len(urls)} asset URLs have no version or hash "
        f"(e.g. {fixed[0]}): every browser relies on revalidation to see an edit",
        [Evidence("probe", u, ctx.t.public_url) for u in fixed[:3]],
    )


def mapped_file(ctx: Context) -> tuple[Path, nginxconf.Directive] | None:
    """The file nginx opens for the sample URL, and the alias/root line that maps it."""
    loc = ctx.static_location
    if loc is None or ctx.sample_rel is None:
        return None
    mapped = nginxconf.mapped_path(loc, ctx.static_uri)
    return (Path(mapped[0]), mapped[1]) if mapped is not None else None


def refusal(ctx: Context, status: int) -> tuple[str, list[Evidence], str]:
    """(cause, evidence, fix) for a non-200 static answer, from evidence only."""
    ev: list[Evidence] = []
    mapped = mapped_file(ctx)
    loc = ctx.static_location
    if loc is not None:
        ev.append(config(loc))
    if mapped is not None:
        ev.append(config(mapped[1]))
    needle = str(mapped[0]) if mapped is not None else ctx.static_uri
    logged = nginxproc.lines_about(ctx.error_logs, needle) or nginxproc.lines_about(
        ctx.error_logs, ctx.static_uri
    )
    ev += [Evidence("output", line[-300:], where) for line, where in logged]
    user = ctx.worker_user
    block = nginxproc.blocked(mapped[0], user) if mapped is not None and user is not None else None
    text = " ".join(line for line, _ in logged)
    if block is not None or "Permission denied" in text:
        if block is not None and user is not None:
            ev.append(Evidence("file", block.said, str(block.path)))
            fix = f"let nginx's worker user ({user.name}) in: `chmod {block.chmod} {block.path}`"
            return f"permission denied: {block.said} (worker user from {user.source})", ev, fix
        return (
            "permission denied (nginx's error log)",
            ev,
            "give nginx's worker user read access to the static folder",
        )
    if mapped is not None and not mapped[0].exists():
        return (
            f"nginx opens {mapped[0]}, which does not exist ({mapped[1].text()} at {mapped[1].where})",
            ev,
            "point alias (or root) at the static folder: `location /static/ { alias /path/static/; }`",
        )
    if "is forbidden" in text or status == 403:
        return "nginx forbids it (see its error log line)", ev, "fix the location that maps the URL"
    if mapped is None and (loc is None or loc.effective("proxy_pass") is not None):
        where = f"{ctx.static_uri} goes to {config(loc).text if loc is not None else 'no location'}"
        return (
            f"no location serves it from disk ({where})",
            ev,
            "add `location /static/ { alias /path/static/; }`",
        )
    return (
        f"HTTP {status} (no explanation in nginx's error log)",
        ev,
        "read nginx's error log for this request",
    )


@check(
    "static.nginx-permissions",
    "nginx's worker user can reach and read the static folder",
    "error",
    "let nginx's worker user traverse every parent folder (x) and read the files (r): "
    "`chmod o+x` on the folder it cannot pass",
    refs=("doctor-catalog F2",),
)
def nginx_permissions(ctx: Context) -> Outcome:
    skip = needs_nginx(ctx)
    if skip is not None:
        return skip
    mapped = mapped_file(ctx)
    if mapped is None:
        return na(f"no nginx location maps {ctx.static_uri} to a file")
    user = ctx.worker_user
    if user is None:
        return na("nginx's worker user is unknown here")
    ev = [config(mapped[1]), Evidence("output", f"worker user {user.name} (uid {user.uid})", user.source)]
    block = nginxproc.blocked(mapped[0], user)
    if block is None:
        return ok(f"{user.name} can open {mapped[0]}", *ev)
    ev.append(Evidence("file", block.said, str(block.path)))
    return Outcome(
        "error",
        f"nginx's worker user {user.name} cannot open {mapped[0]}: {block.said} — nginx answers 403",
        ev,
        f"`chmod {block.chmod} {block.path}` "
        "(or run nginx's workers as a user that may read it: `user NAME;`)",
    )
