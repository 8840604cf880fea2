"""The hub: which tabs are open, what each edit asks of them, and the one log line per edit.

Pure bookkeeping (no sockets): the server hands it tabs and their messages, the watchers hand it
edits. Every edit goes out to the tabs open at that moment; the line is written when each of
them has answered (or after a timeout), so it says what the tabs actually applied:
    fresh  css/app.css  3 ms · applied in 2 tabs 21 ms
    STALE in browser  css/app.css: tab "Chat" applied 1a2b3c4d5e6f != disk 9f8e7d6c5b4a — <cause>
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

CSS = frozenset({".css"})
# Files a stylesheet references: re-fetched in place, like the stylesheet itself.
ASSETS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".webp",
        ".avif",
        ".ico",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".eot",
    }
)
APPLY_TIMEOUT = 2.0  # a tab that has not applied a stylesheet by then is named in the line
RELOAD_TIMEOUT = 8.0  # a reloaded tab has to load the page and connect again

Send = Callable[[dict[str, Any]], None]
Note = Callable[[str], None]
# Told of what the dashboard shows (live/dashboard.py): {"t": "tabs"} when the open tabs change,
# {"t": "edit", "line": …, "tabs": [...]} just before an edit's line is written.
Watcher = Callable[[dict[str, Any]], None]


def kind_of(rel: str) -> str:
    suffix = PurePosixPath(rel).suffix.lower()
    if suffix in CSS:
        return "css"
    if suffix in ASSETS:
        return "asset"
    return "reload"


@dataclass
class Tab:
    id: int
    send: Send
    title: str = ""
    path: str = "/"
    origin: str = ""
    service_worker: bool = False
    opened: float = field(default_factory=time.time)
    last_rel: str = ""  # the last file this tab applied (or reloaded for), and the hash it got
    last_sha: str = ""
    last_at: float = 0.0

    @property
    def name(self) -> str:
        return f'"{self.title}"' if self.title else self.path


@dataclass
class Edit:
    id: int
    rel: str
    kind: str  # css | asset | reload | code
    disk_sha: str
    line: str  # the watcher's own line, e.g. "fresh  css/app.css  3 ms"
    seen: float  # monotonic time of the save
    waiting: dict[int, Tab] = field(default_factory=dict)
    results: list[tuple[Tab, dict[str, Any], float]] = field(default_factory=list)
    done: bool = False


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Hub:
    def __init__(self, note: Note, public_url: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.note = note  # writes one line to the "watcher" log source
        self.public_url = public_url
        self.clock = clock
        self.tabs: dict[int, Tab] = {}
        self.edits: dict[int, Edit] = {}
        self.overlay = ""  # the import error the tabs show, until new code serves
        self.code_pending: tuple[str, float] | None = None
        self._ids = 0
        self._lock = threading.RLock()
        self._csp_noted: set[str] = set()
        self._probes: dict[int, tuple[threading.Event, list[dict[str, Any]], set[int]]] = {}
        self.watchers: list[Watcher] = []

    def _tell(self, event: dict[str, Any]) -> None:
        for watcher in list(self.watchers):
            watcher(event)

    def tab_list(self) -> list[dict[str, Any]]:
        """The open tabs as the dashboard lists them."""
        with self._lock:
            tabs = list(self.tabs.values())
        return [
            {
                "id": t.id,
                "title": t.title,
                "path": t.path,
                "opened": t.opened,
                "file": t.last_rel,
                "sha": t.last_sha[:12],
                "at": t.last_at,
            }
            for t in tabs
        ]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- tabs --------------------------------------------------------------------------------------
    def connect(self, send: Send, hello: dict[str, Any]) -> Tab:
        with self._lock:
            tab = Tab(
                self._next_id(),
                send,
                title=str(hello.get("title") or "")[:80],
                path=str(hello.get("path") or "/")[:500],
                origin=str(hello.get("origin") or ""),
                service_worker=bool(hello.get("sw")),
            )
            self.tabs[tab.id] = tab
            edit = self.edits.get(_int(hello.get("reloadOf")))
            if edit is not None and not edit.done:
                old = edit.waiting.pop(_int(hello.get("prevTab")), None)
                if old is not None:
                    edit.results.append((old, {"status": "reloaded", **hello}, self.clock()))
                    tab.last_rel, tab.last_sha, tab.last_at = edit.rel, "", time.time()
                    self._maybe_finish(edit)
            overlay = self.overlay
        self._tell({"t": "tabs"})
        send({"t": "hello", "tab": tab.id})
        if overlay:
            send({"t": "overlay", "text": overlay})
        return tab

    def disconnect(self, tab: Tab) -> None:
        with self._lock:
            self.tabs.pop(tab.id, None)
            for edit in list(self.edits.values()):
                # A tab that closes while applying a stylesheet will not answer; one that is
                # reloading closes on purpose and comes back with a new connection.
                if edit.kind in ("css", "asset") and edit.waiting.pop(tab.id, None) is not None:
                    edit.results.append((tab, {"status": "closed"}, self.clock()))
                    self._maybe_finish(edit)
        self._tell({"t": "tabs"})

    def message(self, tab: Tab, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        with self._lock:
            if kind == "applied":
                edit = self.edits.get(_int(msg.get("id")))
                if edit is not None and edit.waiting.pop(tab.id, None) is not None:
                    edit.results.append((tab, msg, self.clock()))
                    if msg.get("status") == "applied":
                        tab.last_rel, tab.last_sha = edit.rel, str(msg.get("sha") or "")
                        tab.last_at = time.time()
                    self._maybe_finish(edit)
                    self._tell({"t": "tabs"})
            elif kind == "sheets":
                probe = self._probes.get(_int(msg.get("id")))
                if probe is not None and tab.id in probe[2]:
                    probe[2].discard(tab.id)
                    probe[1].append({"tab": tab.name, "path": tab.path, **msg})
                    if not probe[2]:
                        probe[0].set()

    # -- edits -------------------------------------------------------------------------------------
    def static_changed(self, rel: str, url_path: str, seen: float) -> int | None:
        """A saved static file: push it to the open tabs at once, while the watcher verifies it at
        the public URL (the tabs fetch it there too, and report the hash they got).

        Returns the edit's id for static_verified, or None when no tab is open.
        """
        kind = kind_of(rel)
        with self._lock:
            if not self.tabs:
                return None
            edit = Edit(self._next_id(), rel, kind, "", "", seen, waiting=dict(self.tabs))
            self.edits[edit.id] = edit
            tabs = list(edit.waiting.values())
        message = {"t": kind, "id": edit.id, "path": url_path}
        for tab in tabs:
            self._send(tab, message)
        self._arm(edit, APPLY_TIMEOUT if kind != "reload" else RELOAD_TIMEOUT)
        return edit.id

    def static_verified(self, edit_id: int, disk_sha: str, line: str | None) -> None:
        """The watcher's verdict: its line (the tabs' results are appended), or None when the
        public URL did not serve the file fresh (the watcher says STALE itself; the edit is dropped)."""
        with self._lock:
            edit = self.edits.get(edit_id)
            if edit is None:
                return
            if line is None:
                edit.done = True
                self.edits.pop(edit_id, None)
                return
            edit.disk_sha, edit.line = disk_sha, line
            self._maybe_finish(edit)

    def static_fresh(self, rel: str, url_path: str, disk_sha: str, line: str, seen: float) -> bool:
        """Both steps at once (a file already verified). False when no tab is open."""
        edit_id = self.static_changed(rel, url_path, seen)
        if edit_id is None:
            return False
        self.static_verified(edit_id, disk_sha, line)
        return True

    def code_changed(self, why: str) -> None:
        """The app watcher saw a code edit: the tabs reload once the new worker serves."""
        with self._lock:
            self.code_pending = (why, self.clock())

    def boot_failed(self, text: str) -> None:
        """The new code does not import: every tab shows why, and stays where it is."""
        with self._lock:
            self.overlay = text
            tabs = list(self.tabs.values())
        for tab in tabs:
            self._send(tab, {"t": "overlay", "text": text})
        if tabs:
            self.note(f"error shown in {plural(len(tabs), 'tab')}: {text}")

    def worker_ready(self, status_of: Callable[[str], int]) -> None:
        """A new gunicorn worker has imported the app. status_of(path) is the HTTP status the page
        answers with now (through nginx): a tab reloads only onto a page that is not a 5xx."""
        with self._lock:
            pending, self.code_pending = self.code_pending, None
            if pending is None and not self.overlay:
                return  # the first worker, or a crash restart: the tabs have nothing to catch up on
            why, seen = pending or ("the fix", self.clock())
            tabs = dict(self.tabs)
        statuses = {path: status_of(path) for path in {t.path for t in tabs.values()}}
        ready = self.clock()
        good = {i: t for i, t in tabs.items() if statuses[t.path] < 500}
        bad = [t for t in tabs.values() if statuses[t.path] >= 500]
        for tab in bad:
            self._send(tab, {"t": "overlay", "text": f"GET {tab.path} answers HTTP {statuses[tab.path]}"})
        with self._lock:
            if not bad:
                self.overlay = ""
            line = f"reload  {why}  new code serves {(ready - seen) * 1000:.0f} ms after the save"
            if bad:
                line += " · " + ", ".join(f"tab {t.name} kept: HTTP {statuses[t.path]}" for t in bad)
            if not good:
                if tabs:
                    self.note(line)
                return
            edit = Edit(self._next_id(), why, "code", "", line, seen, waiting=good)
            self.edits[edit.id] = edit
        for tab in good.values():
            self._send(tab, {"t": "reload", "id": edit.id, "why": why})
        self._arm(edit, RELOAD_TIMEOUT)

    def csp_blocked(self, uri: str) -> None:
        path = uri.split("?", 1)[0]
        with self._lock:
            if path in self._csp_noted or len(self._csp_noted) > 20:
                return
            self._csp_noted.add(path)
        self.note(
            f"live reload: not injected into {path}: its Content-Security-Policy blocks a same-origin "
            "script — allow it with script-src 'self' and connect-src 'self' (or add "
            '<script src="/__devstack/live.js" nonce="…"> yourself), or set server.live_reload = false'
        )

    # -- the doctor's rung -------------------------------------------------------------------------
    def probe_sheets(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Every open tab hashes the stylesheets it has applied; their answers (doctor)."""
        with self._lock:
            probe_id = self._next_id()
            tabs = list(self.tabs.values())
            event: threading.Event = threading.Event()
            answers: list[dict[str, Any]] = []
            self._probes[probe_id] = (event, answers, {t.id for t in tabs})
        if tabs:
            for tab in tabs:
                self._send(tab, {"t": "sheets", "id": probe_id})
            event.wait(timeout)
        with self._lock:
            del self._probes[probe_id]
            return list(answers)

    # -- finishing an edit -------------------------------------------------------------------------
    def _send(self, tab: Tab, message: dict[str, Any]) -> None:
        try:
            tab.send(message)
        except OSError:
            self.disconnect(tab)

    def _arm(self, edit: Edit, timeout: float) -> None:
        timer = threading.Timer(timeout, self._expire, args=(edit,))
        timer.daemon = True
        timer.start()

    def _expire(self, edit: Edit) -> None:
        with self._lock:
            self._finish(edit)

    def _maybe_finish(self, edit: Edit) -> None:
        if not edit.waiting and (edit.line or edit.kind == "code"):
            self._finish(edit)

    def _finish(self, edit: Edit) -> None:
        """Under the lock: write the edit's line(s), once."""
        if edit.done:
            return
        edit.done = True
        self.edits.pop(edit.id, None)
        if not edit.line:  # the watcher never gave its verdict (it could not fetch the file)
            edit.line = f"fresh?  {edit.rel}  not verified at the public URL"
        lines = summarize(edit, self.public_url)
        self._tell({"t": "edit", "line": lines[0], "tabs": proofs(edit)})
        for line in lines:
            self.note(line)


def summarize(edit: Edit, public_url: str = "") -> list[str]:
    """The edit's line, and a STALE line for every tab that applied something else."""
    verb = {"css": "applied in", "asset": "re-fetched in", "reload": "reloaded", "code": "reloaded"}[
        edit.kind
    ]
    done: list[float] = []
    unused: list[Tab] = []
    stale: list[str] = []
    for tab, msg, when in edit.results:
        status = msg.get("status")
        if status == "reloaded":
            code = _int(msg.get("status_code"))
            if code >= 500:
                stale.append(f"STALE in browser  {edit.rel}: tab {tab.name} reloaded onto HTTP {code}")
            else:
                done.append(when - edit.seen)
        elif status == "unused":
            unused.append(tab)
        elif status == "applied" and msg.get("sha") == edit.disk_sha and msg.get("same", True):
            done.append(when - edit.seen)
        elif status == "applied" or status == "error":
            stale.append(stale_line(edit, tab, msg, public_url))
    parts = []
    if done:
        parts.append(f"{verb} {plural(len(done), 'tab')} {max(done) * 1000:.0f} ms")
    if unused:
        parts.append(f"not used by {plural(len(unused), 'tab')}")
    if edit.waiting:
        seconds = APPLY_TIMEOUT if edit.kind in ("css", "asset") else RELOAD_TIMEOUT
        parts.append(f"{plural(len(edit.waiting), 'tab')} did not answer in {seconds:.0f} s")
    line = edit.line + (" · " + ", ".join(parts) if parts else "")
    return [line, *stale]


def proofs(edit: Edit) -> list[dict[str, Any]]:
    """Each tab's answer to an edit, for the dashboard's feed: who applied what, how fast."""
    out = []
    for tab, msg, when in edit.results:
        sha = str(msg.get("sha") or "")
        status = str(msg.get("status") or "")
        ok = status == "reloaded" and _int(msg.get("status_code")) < 500
        ok = ok or (status == "applied" and sha == edit.disk_sha and bool(msg.get("same", True)))
        out.append(
            {
                "tab": tab.name,
                "status": status,
                "sha": sha[:12],
                "ok": ok,
                "ms": round((when - edit.seen) * 1000),
            }
        )
    out += [
        {"tab": t.name, "status": "silent", "sha": "", "ok": False, "ms": None} for t in edit.waiting.values()
    ]
    return out


def stale_line(edit: Edit, tab: Tab, msg: dict[str, Any], public_url: str = "") -> str:
    head = f"STALE in browser  {edit.rel}: tab {tab.name}"
    sha = str(msg.get("sha") or "")
    if msg.get("status") == "error":
        what = f"could not fetch it ({str(msg.get('error') or 'no answer')[:120]})"
    elif sha and sha != edit.disk_sha:
        what = f"applied {sha[:12]} != disk {edit.disk_sha[:12]}"
    else:
        what = f"fetched {sha[:12] or '-'} but the stylesheet it applied differs from that body"
    return f"{head} {what} — {cause(tab, msg, public_url)}"


def cause(tab: Tab, msg: dict[str, Any], public_url: str = "") -> str:
    """The layer between nginx and the tab that answered with other bytes, where it can be known."""
    if msg.get("crossOrigin"):
        return (
            f"the tab loads it from another origin ({msg.get('crossOrigin')}), not through devstack's nginx"
        )
    if tab.service_worker or msg.get("sw"):
        return (
            "a service worker controls the page and answers its requests "
            "(DevTools > Application > Service workers: Unregister)"
        )
    if msg.get("cached"):
        headers = str(msg.get("cacheHeaders") or "no Cache-Control")
        return f"the browser answered from its HTTP cache ({headers}: a copy kept by expires/max-age)"
    origin = public_url.rstrip("/")
    if origin and tab.origin and tab.origin != origin:
        return f"the tab is on {tab.origin}, not devstack's {origin}: something in between serves it"
    return "no known cause: run `devstack doctor`"


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return -1
