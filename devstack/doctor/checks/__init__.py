"""Checks by area; each module registers its checks with @check on import."""

from __future__ import annotations

from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na
from devstack.doctor.nginxconf import Directive
from devstack.stack import probes


def config(d: Directive) -> Evidence:
    """A config line as evidence: the directive and its file:line."""
    return Evidence("config", d.text(), d.where)


def needs_public(ctx: Context) -> Outcome | None:
    """n/a when the public URL does not answer: the probes would only repeat that fact."""
    if ctx.public_reachable():
        return None
    url = ctx.t.public_url.rstrip("/") + "/"
    return na(
        f"{ctx.t.public_url} does not answer, nothing to probe",
        Evidence("probe", ctx.error_for(url) or "no answer", url),
    )


def needs_static(ctx: Context) -> Outcome | None:
    unreachable = needs_public(ctx)
    if unreachable is not None:
        return unreachable
    if ctx.sample_rel is None:
        where = (
            str(ctx.t.static_dir)
            if ctx.t.static_dir
            else f"no --static-dir, and the index page links nothing under {ctx.t.static_prefix}"
        )
        return na(f"no static file to probe ({where})")
    return None


def public_static_200(ctx: Context) -> probes.Response | Outcome:
    """The sample static file through the public URL when it answers 200; else why the check is moot."""
    skip = needs_static(ctx)
    if skip is not None:
        return skip
    resp = ctx.public_static()
    if resp is None or resp.status != 200:
        return na(f"{ctx.public_static_url} did not answer 200")
    return resp


def needs_nginx(ctx: Context) -> Outcome | None:
    if ctx.t.nginx_conf is None:
        if ctx.t.managed:
            return na("no rendered nginx.conf yet (`devstack up` writes .devstack/nginx.conf)")
        return na("no nginx config (pass --nginx-conf PATH)")
    if ctx.nginx_error:
        return Outcome(
            "warning",
            f"cannot read the nginx config: {ctx.nginx_error}",
            [Evidence("file", ctx.nginx_error, str(ctx.t.nginx_conf))],
            "fix the config so that `nginx -t` passes",
        )
    if ctx.server is None:
        return na("the nginx config has no server block")
    return None
