"""Gunicorn: is it running, and are its settings ones Flask-SocketIO survives in development?"""

from __future__ import annotations

import re
import time
from pathlib import Path

from devstack.doctor import declared, procinfo
from devstack.doctor.context import Context
from devstack.doctor.model import Evidence, Outcome, na, ok
from devstack.doctor.registry import check
from devstack.project import apppython
from devstack.system import fsinfo

EVENTLET_FIX = (
    "run the gthread worker with simple-websocket: `pip install simple-websocket`, "
    "`gunicorn -k gthread -w 1 --threads 16 ...` and SocketIO(app, async_mode='threading'); "
    "or gevent: `-k gevent -w 1`, async_mode='gevent'; or pin gunicorn<26"
)
STARTING = re.compile(r"Starting gunicorn (\d+(?:\.\d+)*)")
BOOT_FAILURES = re.compile(r"Worker failed to boot|App failed to load|class uri '[^']+' invalid")
EXCEPTION = re.compile(r"\b([A-Za-z_][\w.]*(Error|Exception)): .*")


DEVSTACK_LOG_LINE = re.compile(r"^\S+Z ([oed]) (.*)$")  # devstack's own log files


def _log_tail(path: Path | None, lines: int = 400) -> list[str]:
    """gunicorn's own lines (devstack's timestamps and notes stripped), the last `lines`."""
    if path is None:
        return []
    try:
        raw = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
    out = []
    for line in raw:
        match = DEVSTACK_LOG_LINE.match(line)
        if match is None:
            out.append(line)
        elif match.group(1) != "d":
            out.append(match.group(2))
    return out


def _log_path(ctx: Context) -> Path | None:
    if ctx.t.gunicorn_log is not None:
        return ctx.t.gunicorn_log
    g = ctx.gunicorn
    if g is not None and g.get("errorlog") not in ("", "-"):
        return Path(g.cwd or ".") / g.get("errorlog")
    return None


def _setting(ctx: Context, name: str) -> Evidence:
    g = ctx.gunicorn
    assert g is not None
    return Evidence("output", f"{name} = {g.get(name) or '(default)'}", g.sources.get(name, f"pid {g.pid}"))


@check(
    "gunicorn.running",
    "gunicorn runs and its last boot did not fail",
    "error",
    "read the traceback above the failure in gunicorn's log, fix the import error, and "
    "start it again (`devstack up` restarts it on the next save)",
    refs=("doctor-catalog R4",),
)
def running(ctx: Context) -> Outcome:
    log = _log_path(ctx)
    tail = _log_tail(log)
    last_boot = max((i for i, ln in enumerate(tail) if "Starting gunicorn" in ln), default=0)
    since = tail[last_boot:]
    failures = [ln for ln in since if BOOT_FAILURES.search(ln)]
    ev = [Evidence("output", ln.strip()[-200:], str(log)) for ln in failures[-2:]]
    # The exception behind "Worker failed to boot" is the last one logged before it.
    cause = ""
    for ln in since:
        match = EXCEPTION.search(ln)
        if match:
            cause = match.group(0).strip()[:160]
    if cause:
        ev.insert(0, Evidence("output", cause, str(log)))
    failed = BOOT_FAILURES.search(failures[-1]) if failures else None
    what = failed.group(0) if failed else ""
    if "class uri 'eventlet'" in what and ctx.gunicorn is None:
        # One fault, one finding: gunicorn.eventlet names it, with the fix that works.
        return Outcome(
            "error",
            "gunicorn did not boot: its eventlet worker is gone (gunicorn.eventlet explains)",
            ev,
            EVENTLET_FIX,
        )
    why = f"{cause} ({what})" if cause and what else (cause or what)
    if ctx.t.managed and not ctx.t.running:
        if failures:
            return Outcome("error", f"the last start failed: {why}", ev)
        return na("the stack is not running (`devstack up`)")
    if ctx.app_url is None and ctx.gunicorn is None:
        if failures:
            return Outcome("error", f"gunicorn failed: {why}", ev)
        return na("the app server's address is unknown (no proxy_pass; pass --app-url)")
    g = ctx.gunicorn
    if g is None:
        port = ctx.app_port
        return Outcome(
            "error",
            f"no gunicorn on the app port {port}: {why or 'nothing listens there'}",
            ev or [Evidence("probe", f"no listener on 127.0.0.1:{port}")],
        )
    if failures:
        return Outcome("error", f"gunicorn (pid {g.pid}) logged a failed boot: {why}", ev)
    return ok(
        f"gunicorn master pid {g.pid}, {g.live_workers} worker(s), {g.worker_class} worker class",
        Evidence("output", g.command[:300], f"pid {g.pid}"),
    )


@check(
    "gunicorn.last-up",
    "The last `devstack up` became ready",
    "error",
    'the cause is the part after "gunicorn logged:" (`devstack logs gunicorn` shows its '
    "traceback): fix it, then `devstack up` again",
    refs=("issue #25",),
)
def last_up(ctx: Context) -> Outcome:
    if not ctx.t.managed:
        return na("not a devstack-managed stack: no record of its last `up`")
    if not ctx.t.last_failure:
        return ok("no failed `devstack up` on record")
    if ctx.t.last_failure.startswith("gunicorn could not start the app"):
        return na("its failed boot is gunicorn.running's to explain")  # one fault, one finding
    state_file = str(ctx.t.nginx_prefix / "state.json") if ctx.t.nginx_prefix else ""  # the state dir
    return Outcome(
        "error",
        f"the last `devstack up` failed: {ctx.t.last_failure}",
        [Evidence("file", "status failed", state_file)],
    )


@check(
    "gunicorn.plan",
    "`devstack up` can plan this project (worker, async mode, the app's libraries)",
    "error",
    "do what the finding says, then `devstack up`",
    refs=("issue #25",),
)
def plan_builds(ctx: Context) -> Outcome:
    """The checks `up` makes before it starts anything, made here too: an `up` they stopped
    left no state behind, and doctor must not call that project healthy."""
    from devstack.errors import DevstackError
    from devstack.project.config import load
    from devstack.stack import facts, plan

    if ctx.t.config_path is None:
        return na("no devstack.toml: nothing to plan")
    try:
        config = load(ctx.t.config_path)
        the_plan = plan.build(config, facts.gather(config))
    except DevstackError as exc:
        return Outcome("error", f"`devstack up` stops before starting anything: {exc}", [])
    evidence = [Evidence("output", note) for note in the_plan.notes]
    return ok(
        f"the plan builds: {the_plan.config.app.worker} worker, {len(the_plan.processes)} processes",
        *evidence,
    )


@check(
    "gunicorn.eventlet",
    "No eventlet worker on gunicorn 26+ (removed)",
    "error",
    "use the gthread worker (+ simple-websocket) or gevent; or pin gunicorn<26",
    refs=("gunicorn 26.0.0 news: eventlet worker removed", "benoitc/gunicorn#3623"),
)
def eventlet(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    version: tuple[int, ...] | None
    if g is not None:
        worker, where = g.worker_class, g.sources.get("worker_class", f"pid {g.pid}")
        version = g.version()
    else:
        # Not running: its last boot in the log says which worker failed, and which gunicorn.
        log = _log_path(ctx)
        tail = _log_tail(log)
        failed = [ln for ln in tail if "class uri 'eventlet'" in ln]
        if failed:
            versions = [m.group(1) for ln in tail if (m := STARTING.search(ln))]
            version = apppython.parse_version(versions[-1]) if versions else None
            shown = ".".join(map(str, version)) if version else "26 or later"
            return Outcome(
                "error",
                f"gunicorn {shown} has no eventlet worker (removed in 26): it exits at start "
                "with \"class uri 'eventlet' invalid or not found\"",
                [Evidence("output", failed[-1].strip()[-200:], str(log))],
                EVENTLET_FIX,
            )
        if ctx.t.app_worker is None:
            return na("no gunicorn found and no devstack.toml to read the worker from")
        worker, where = ctx.t.app_worker, f"app.worker in {ctx.t.config_path}"
        version = _app_gunicorn(ctx.t.config_path)
    shown = ".".join(map(str, version)) if version else "unknown"
    ev = [Evidence("config", f"worker class {worker}", where), Evidence("output", f"gunicorn {shown}")]
    if worker != "eventlet":
        return ok(f"{worker} worker on gunicorn {shown}", *ev)
    if version is not None and version >= (26,):
        return Outcome(
            "error",
            f"the eventlet worker is gone in gunicorn {shown}: it fails with "
            "\"class uri 'eventlet' invalid or not found\"",
            ev,
            EVENTLET_FIX,
        )
    return Outcome(
        "warning",
        f"eventlet worker on gunicorn {shown}: deprecated, removed in 26, "
        "and eventlet itself is bug-fix-only",
        ev,
        EVENTLET_FIX,
    )


@check(
    "gunicorn.workers",
    "One gunicorn worker with Socket.IO",
    "error",
    "`-w 1` (scale with --threads or gevent; several workers need sticky sessions and a message queue)",
    refs=("Flask-SocketIO docs: using multiple workers",),
)
def workers(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    if g is None:
        return na("no running gunicorn found")
    count = max(g.workers, g.live_workers)
    ev = [
        _setting(ctx, "workers"),
        Evidence("probe", f"{g.live_workers} live worker processes", f"pid {g.pid}"),
    ]
    old = _retired_workers(ctx)
    lingering = ""
    if old:
        # More alive than configured (or started before the master's last reload in its log): the
        # oldest are workers a reload retired that have not exited (an open websocket holds a
        # gthread worker) — not a -w N setting.
        now = time.time()
        shown = ", ".join(f"pid {pid}, started {now - started:.0f} s ago" for pid, started in old)
        lingering = (
            f"{len(old)} old worker(s) from before a reload still run beside the new ones ({shown}): "
            "they serve their open connections with the old code"
        )
        ev.append(Evidence("probe", lingering, f"pid {g.pid}"))
    if g.workers == 1 and old:
        return Outcome(
            "warning",
            f"one worker is configured, but {lingering}",
            ev,
            LINGER_FIX,
        )
    if g.workers > 1:
        return Outcome(
            "error",
            f"{g.workers} workers: Socket.IO sessions live in one process, so "
            "clients are randomly disconnected (400 'Invalid session')"
            + (f"; and {lingering}" if old else ""),
            ev,
            _workers_fix(g) + (f"; {LINGER_FIX}" if old else ""),
        )
    if count > 1:
        return Outcome(
            "error",
            f"{count} workers: Socket.IO sessions live in one process, so "
            "clients are randomly disconnected (400 'Invalid session')",
            ev,
        )
    return ok("one worker", *ev)


def _workers_fix(g: procinfo.Gunicorn) -> str:
    """-w 1, said where the count was set: a config file's line is edited there."""
    source = g.sources.get("workers", "")
    where = (
        f"`workers = 1` in {source} (or `-w 1` on the command line, which overrides it)"
        if re.search(r":\d+$", source)
        else "`-w 1`"
    )
    return (
        f"{where} (scale with --threads or gevent; several workers need sticky sessions and a message queue)"
    )


LINGER_FIX = (
    "`devstack up` stops an old worker 3.5 s after the reload; a gunicorn run by hand: "
    "close the old tabs, or kill -QUIT the old worker"
)
HUP_LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})\] \[\d+\] \[INFO\] Handling signal: hup"
)


def _last_reload(ctx: Context) -> float | None:
    """When the master last handled a HUP, from gunicorn's log (its default time format)."""
    from datetime import datetime

    when = None
    for line in _log_tail(_log_path(ctx), 2000):
        match = HUP_LINE.match(line)
        if match:
            when = datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S %z").timestamp()
    return when


def _retired_workers(ctx: Context) -> list[tuple[int, float]]:
    """Workers a reload retired that still run: the oldest beyond the configured count, and any
    started before the master's last reload (when its log says when)."""
    g = ctx.gunicorn
    assert g is not None
    extra = max(0, g.live_workers - g.workers)
    old = list(g.worker_started[:extra])
    reload = _last_reload(ctx)
    if reload is not None:
        old += [w for w in g.worker_started[extra:] if w[1] < reload - 1]  # gunicorn logs whole seconds
    return old


@check(
    "gunicorn.reload-preload",
    "--reload is not combined with --preload",
    "warning",
    "drop --preload in development (or let `devstack up` reload the app)",
)
def reload_preload(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    if g is None:
        return na("no running gunicorn found")
    if g.get("reload") == "true" and g.get("preload_app") == "true":
        return Outcome(
            "warning",
            "--reload with --preload: the app is imported once in the "
            "master, so code edits are never reloaded",
            [_setting(ctx, "reload"), _setting(ctx, "preload_app")],
        )
    return ok("no --reload/--preload clash")


@check(
    "gunicorn.reload-shared-fs",
    "gunicorn's reloader can see edits on this filesystem",
    "error",
    "`--reload-engine poll` (or let `devstack up` reload: it polls shared folders)",
    refs=("doctor-catalog R1",),
)
def reload_shared(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    if g is None:
        return na("no running gunicorn found")
    if g.get("reload") != "true":
        return na("gunicorn's own --reload is not used")
    engine = g.get("reload_engine", "auto")
    fs = fsinfo.fstype(g.app_dir)
    ev = [_setting(ctx, "reload_engine"), Evidence("file", f"{g.app_dir} is on {fs}", str(g.app_dir))]
    # "auto" means inotify whenever the inotify package is importable, polling otherwise.
    uses_inotify = engine == "inotify" or (engine == "auto" and g.can_import("inotify"))
    if fsinfo.is_shared(fs) and uses_inotify:
        return Outcome(
            "error",
            f"--reload with the {engine} engine (inotify) on {fs}: inotify "
            "events do not cross shared folders, so edits from the host never "
            "reload",
            ev,
        )
    return ok(f"reload engine {engine} on {fs}", *ev)


@check(
    "gunicorn.threads",
    "The gthread worker has threads to spare for websockets",
    "error",
    "`--threads 16` (devstack's default): each open websocket holds one thread for its life",
)
def threads(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    if g is None:
        return na("no running gunicorn found")
    if g.worker_class != "gthread":
        return na(f"the {g.worker_class} worker does not use a thread pool")
    try:
        count = int(g.get("threads", "1"))
    except ValueError:
        return na(f"threads = {g.get('threads')!r} is not a number")
    ev = [_setting(ctx, "threads")]
    if count <= 1:
        return Outcome(
            "error",
            f"gthread with {count} thread: one open Socket.IO websocket holds "
            "it, and every other request (the page, its CSS) waits until it closes",
            ev,
        )
    return ok(f"{count} threads", *ev)


@check(
    "gunicorn.sync-worker",
    "Socket.IO does not run on gunicorn's sync worker",
    "error",
    "`-k gthread -w 1 --threads 16` with simple-websocket and async_mode='threading' (or `-k gevent -w 1`)",
    refs=("Flask-SocketIO docs: deployment",),
)
def sync_worker(ctx: Context) -> Outcome:
    g = ctx.gunicorn
    if g is None:
        return na("no running gunicorn found")
    if g.worker_class != "sync":
        return ok(f"the {g.worker_class} worker", _setting(ctx, "worker_class"))
    shake = ctx.handshake
    if shake is None:
        return ok("sync worker, and the app answers no Socket.IO handshake (no websockets to hold)")
    return Outcome(
        "error",
        "the sync worker serves one request at a time: one open Socket.IO connection "
        "(a websocket, or a long-poll) holds it, and every other request waits or times out",
        [
            _setting(ctx, "worker_class"),
            Evidence("probe", "Engine.IO handshake answered (the app uses Socket.IO)"),
        ],
    )


def _app_gunicorn(config_path: Path | None) -> tuple[int, ...] | None:
    """gunicorn's version in the APP's interpreter (what `up` would run), not in devstack's."""
    from devstack.errors import DevstackError
    from devstack.project.config import load

    if config_path is None:
        return None
    try:
        return apppython.find(load(config_path)).gunicorn
    except DevstackError:
        return None


def _app_interpreter_gunicorn(ctx: Context, root: Path) -> tuple[tuple[int, ...] | None, str]:
    """gunicorn's version in the app's interpreter: the project's venv (as `up` finds it), else the
    running gunicorn's, else devstack's own — with which one it was."""
    import os

    from devstack.errors import DevstackError
    from devstack.project import pythonprobe

    for path, why in pythonprobe.candidates(str(root), os.environ):
        if Path(path).is_file():
            try:
                return apppython.probe(path, why).gunicorn, f"{path} ({why})"
            except DevstackError:
                break
    g = ctx.gunicorn
    if g is not None and g.exe:
        return g.version(), f"{g.exe} (the running gunicorn's)"
    return apppython.own_gunicorn(), "devstack's own interpreter (no venv in the project)"


def _edit(site: declared.Site, new: str) -> str:
    return f"{site.file}:{site.line}: `{site.text}` -> `{new}`"


def _new_worker_class(item: declared.Declared, site: declared.Site) -> str:
    """The site's text with the gthread worker (and threads, unless set)."""
    threads = "threads" not in item.settings
    if site.text.startswith("worker_class"):
        return 'worker_class = "gthread"' + ("; threads = 16" if threads else "")
    value = item.settings.get("worker_class", "")
    return site.text.replace(value, "gthread") + (" --threads 16" if threads else "")


def _sync_anchor(item: declared.Declared) -> tuple[declared.Site, str] | None:
    """Where to add the gthread worker when none is set: after `gunicorn` on the command line,
    or next to the config file's first assignment."""
    cmd = item.command
    if item.kind == "config file":
        return cmd, cmd.text + '; worker_class = "gthread"; threads = 16'
    match = re.search(r"gunicorn(?=\s)", cmd.text)
    if match is None:
        return None
    return declared.Site(cmd.file, cmd.line, "gunicorn "), "gunicorn -k gthread --threads 16 "


@check(
    "gunicorn.declared",
    "The gunicorn the project declares (Procfile, systemd, compose, gunicorn.conf.py) can serve Socket.IO",
    "error",
    "edit the file and line the finding names as it says",
    refs=("issue #26", "Flask-SocketIO docs: deployment"),
)
def declared_gunicorn(ctx: Context) -> Outcome:
    root = ctx.t.project_dir
    if root is None or not root.is_dir():
        return na("no project folder (pass --project DIR)")
    found = declared.find(root)
    if not found:
        return na(
            f"{root} declares no gunicorn (Procfile web:, *.service ExecStart=, compose command:, "
            "gunicorn.conf.py)"
        )
    uses, queue = declared.socketio_use(root)
    if uses is None and ctx.handshake is not None:
        uses = f"the app at {ctx.app_url} answers the Engine.IO handshake"
    g = ctx.gunicorn
    problems: list[tuple[str, str, Evidence, str]] = []  # (level, what, evidence, edit)
    seen: set[tuple[str, str]] = set()
    version: tuple[int, ...] | None = None
    version_from = ""
    shown: list[str] = []
    for item in found:
        cmd = item.command
        shown.append(f"{cmd.where} ({item.kind})")
        worker = item.worker_class
        if worker == "eventlet" and not (g is not None and g.worker_class == "eventlet"):
            if not version_from:
                version, version_from = _app_interpreter_gunicorn(ctx, root)
            site = item.sites["worker_class"]
            level = "error" if version is not None and version >= (26,) else "warning"
            ver = ".".join(map(str, version)) if version else ""
            if level == "error":
                what = (
                    f"{site.where}: the eventlet worker, gone in gunicorn 26 — the app's interpreter has "
                    f"gunicorn {ver}: it exits at start (class uri 'eventlet' invalid)"
                )
            elif version is None:
                what = (
                    f"{site.where}: the eventlet worker, removed in gunicorn 26 (no gunicorn in the app's "
                    "interpreter to tell which one runs it)"
                )
            else:
                what = f"{site.where}: the eventlet worker on gunicorn {ver}: deprecated, removed in 26"
            key = ("eventlet", site.where)
            if key not in seen:
                seen.add(key)
                problems.append(
                    (
                        level,
                        what,
                        Evidence("file", site.text, site.where),
                        _edit(site, _new_worker_class(item, site)),
                    )
                )
        if uses and worker == "sync" and not (g is not None and g.worker_class == "sync"):
            explicit = item.sites.get("worker_class")
            anchor = (explicit, _new_worker_class(item, explicit)) if explicit else _sync_anchor(item)
            where = explicit.where if explicit else cmd.where
            key = ("sync", where)
            if key not in seen and anchor is not None:
                seen.add(key)
                problems.append(
                    (
                        "error",
                        f"{where}: the sync worker ({'set' if explicit else 'the default: no -k'}) "
                        "serves one "
                        "request at a time: one open Socket.IO connection holds it",
                        Evidence("file", explicit.text if explicit else cmd.text[:200], where),
                        _edit(*anchor),
                    )
                )
        count = item.workers
        if uses and queue is None and count > 1 and not (g is not None and g.workers == count):
            site = item.sites["workers"]
            key = ("workers", site.where)
            if key not in seen:
                seen.add(key)
                problems.append(
                    (
                        "error",
                        f"{site.where}: {count} workers for Socket.IO without a message queue: a client's "
                        "requests land on workers that do not hold its session (400 'Invalid session')",
                        Evidence("file", site.text, site.where),
                        _edit(site, re.sub(r"\d+$", "1", site.text)),
                    )
                )
        reload = item.sites.get("reload")
        if (
            reload is not None
            and item.settings.get("reload") in ("true", "True")
            and not (g is not None and g.get("reload") == "true")
        ):
            from devstack.system import fsinfo as fs

            fstype = fs.fstype(root)
            engine = item.settings.get("reload_engine", "auto")
            if fs.is_shared(fstype) and engine in ("auto", "inotify"):
                key = ("reload", reload.where)
                if key not in seen:
                    seen.add(key)
                    new = (
                        reload.text + '; reload_engine = "poll"'
                        if reload.text.startswith("reload")
                        else reload.text + " --reload-engine poll"
                    )
                    problems.append(
                        (
                            "error",
                            f"{reload.where}: --reload on {fstype} ({root}): inotify sees no edits "
                            "made on the "
                            "host, so the app never reloads",
                            Evidence("file", reload.text, reload.where),
                            _edit(reload, new),
                        )
                    )
    if not problems:
        running = (
            f"; the running gunicorn (pid {g.pid}) is judged by the checks above" if g is not None else ""
        )
        return ok(f"read {', '.join(shown)}: nothing Socket.IO cannot run on{running}")
    evidence = [p[2] for p in problems]
    if uses:
        evidence.append(Evidence("file", "the app uses Socket.IO", uses))
    if version_from:
        evidence.append(
            Evidence(
                "output", f"gunicorn {'.'.join(map(str, version or ())) or 'not installed'} in {version_from}"
            )
        )
    level = "error" if any(p[0] == "error" for p in problems) else "warning"
    edits = "; ".join(p[3] for p in problems)
    fix = (
        f"{edits} (the gthread worker needs simple-websocket and SocketIO(async_mode='threading'); "
        "several workers need a message queue and sticky sessions, which gunicorn cannot route)"
    )
    return Outcome(level, "; ".join(p[1] for p in problems), evidence, fix)
