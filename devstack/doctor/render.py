"""Doctor's output: flutter-doctor style for people, JSON (report.schema.json) for tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from devstack import __version__
from devstack.doctor.context import Context
from devstack.doctor.model import CheckSpec, Result
from devstack.doctor.registry import AREAS
from devstack.doctor.runner import exit_code, summary
from devstack.system import env as env_mod
from devstack.system.env import Env

SCHEMA_ID = "https://devstack.invalid/schemas/doctor-report-1.json"
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
MARKS = {
    "ok": "[green]✓[/]",
    "na": "[dim]-[/]",
    "info": "[blue]i[/]",
    "warning": "[yellow]![/]",
    "error": "[red]✗[/]",
}
AREA_TITLES = {
    "static": "Static files",
    "nginx": "nginx config",
    "socketio": "Socket.IO proxying",
    "gunicorn": "Gunicorn",
    "procs": "Other processes",
    "net": "Ports and exposure",
}
RANK = {"ok": 0, "na": 0, "info": 1, "warning": 2, "error": 3}


def target_json(ctx: Context) -> dict[str, Any]:
    t = ctx.t
    conf = ctx.conf()
    return {
        "kind": "devstack" if t.managed else "external",
        "public_url": t.public_url,
        "app_url": ctx.app_url,
        "static_dir": str(t.static_dir) if t.static_dir else None,
        "static_url": t.static_prefix,
        "nginx_conf": str(t.nginx_conf) if t.nginx_conf else None,
        "nginx_config_source": conf.source if conf else None,
        "config": str(t.config_path) if t.config_path else None,
        "running": t.running,
        "tls_verify": not ctx.insecure,
    }


def to_json(
    results: list[Result], ctx: Context, fail_level: str = "error", ignored: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_ID,
        "schema_version": 1,
        "devstack_version": __version__,
        "target": target_json(ctx),
        "summary": summary(results),
        "exit_code": exit_code(results, fail_level),
        "fail_level": fail_level,
        "ignored": list(ignored),
        "checks": [r.to_json() for r in results],
    }


def print_json(
    results: list[Result],
    ctx: Context,
    fail_level: str = "error",
    ignored: tuple[str, ...] = (),
    env: Env | None = None,
) -> None:
    (env or env_mod.current()).write_json(to_json(results, ctx, fail_level, ignored))


def print_list(checks: list[CheckSpec], out: Console) -> None:
    for spec in checks:
        out.print(f"{spec.id:<28} {spec.severity:<8} {escape(spec.title)}", soft_wrap=True)


def print_rich(
    results: list[Result],
    ctx: Context,
    out: Console,
    verbose: bool = False,
    ignored: tuple[str, ...] = (),
) -> None:
    t = ctx.t
    kind = f"devstack stack ({t.config_path})" if t.managed else "external stack"
    out.print(f"[bold]devstack doctor[/] · {escape(t.public_url)} · {escape(kind)}", soft_wrap=True)
    if t.insecure and t.public_url.startswith("https"):
        out.print("[yellow]--insecure: https certificates are NOT verified[/]")
    elif ctx.insecure and t.public_url.startswith("https"):
        out.print(
            "[yellow]the certificate does not verify (net.tls-trust): "
            "the probes ran over TLS without verification[/]"
        )
    if ignored:
        out.print(f"[dim]ignored ([doctor] ignore): {escape(', '.join(ignored))}[/]", soft_wrap=True)
    conf = ctx.conf()
    if conf is not None:
        how = conf.source + (f" (nginx -T failed: {conf.note})" if conf.note else "")
        out.print(f"[dim]nginx config: {escape(conf.main_file)} via {escape(how)}[/]", soft_wrap=True)
    if t.managed and not t.running:
        out.print("[dim]the stack is not running: probes are skipped (`devstack up`)[/]")
    out.print()
    for area in AREAS:
        group = [r for r in results if r.spec.area == area]
        if not group:
            continue
        worst = max((r.outcome.status for r in group), key=lambda s: RANK[s])
        counts = summary(group)
        parts = [f"{counts[k]} {k}" for k in ("error", "warning", "info") if counts[k]]
        parts.append(f"{counts['ok']} passed")
        if counts["na"]:
            parts.append(f"{counts['na']} n/a")
        mark = MARKS[worst] if worst != "na" else MARKS["ok"]
        out.print(f"[{mark}] [bold]{AREA_TITLES[area]}[/] ({', '.join(parts)})")
        for r in group:
            o = r.outcome
            out.print(
                f"    {MARKS[o.status]} [bold]{r.spec.id}[/] {escape(o.finding)}",
                soft_wrap=True,
                highlight=False,
            )
            if o.status in ("error", "warning", "info") or verbose:
                for e in o.evidence:
                    where = f"  [dim]({escape(e.where)})[/]" if e.where else ""
                    out.print(
                        f"        [dim]{e.kind:<7}[/] {escape(e.text)}{where}",
                        soft_wrap=True,
                        highlight=False,
                    )
            if o.status in ("error", "warning", "info"):
                out.print(
                    f"        [cyan]fix[/]     {escape(o.fix or r.spec.fix)}", soft_wrap=True, highlight=False
                )
    counts = summary(results)
    out.print()
    line = (
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info · "
        f"{counts['ok']} passed · {counts['na']} n/a"
    )
    if counts["error"]:
        out.print(f"[red]✗[/] {line}")
    elif counts["warning"] or counts["info"]:
        out.print(f"[yellow]![/] {line}")
    else:
        out.print(f"[green]✓[/] {line} — no issues found")
