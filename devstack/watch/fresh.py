"""The freshness watcher: after every edit in the static folder, prove the public URL serves it.

Each create/modify (debounced per file; editor temp and swap files ignored) is fetched through
the PUBLIC URL and its sha256 compared with the disk:
    fresh  css/app.css  4 ms
    STALE css/app.css: served 1a2b3c4d5e6f != disk 9f8e7d6c5b4a — <the layer at fault>
and, once per distinct header, when the headers would let a browser keep the old copy.

VM mode uses the same watcher without its own observer: the sync says when a file has landed in
the guest (`submit`), and a STALE line then also names the guest's copy (`guest_sha`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver

from devstack.logs.sink import Sink
from devstack.stack import httpcache, probes, rootstatic
from devstack.watch.observers import ignored, make_observer


def shown_name(name: str) -> str:
    """A file name fit for a log line and a tab's message: bytes that are not UTF-8 (the
    surrogate escapes os.fsdecode made of them) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


DEBOUNCE = 0.008  # a save is write(s) then close: wait this long after the last write
CLOSED_GRACE = 0.0  # close-after-write (inotify) means the file is complete: check at once
RETRIES = (0.02, 0.05, 0.15)  # a stale answer is re-checked before shouting: races are not faults


class Browser(Protocol):
    """The open tabs (devstack/live/). static_changed pushes a saved file to them while the
    watcher verifies it (a handle, or None: no tab open); static_verified hands over the watcher's
    line, which the tabs' results are appended to (None: not fresh, the watcher said STALE)."""

    def static_changed(self, rel: str, seen: float) -> int | None: ...
    def static_verified(self, handle: int, disk_sha: str, line: str | None) -> None: ...


class StaticWatcher(FileSystemEventHandler):
    def __init__(
        self,
        static_dir: Path,
        public_url: str,
        static_prefix: str,
        sink: Sink,
        polling: str = "auto",
        app_url: str | None = None,
        on_result: Callable[[probes.Freshness, float], None] | None = None,
        browser: Browser | None = None,
        observe: bool = True,
        guest_sha: Callable[[Path], str | None] | None = None,
        skip: tuple[Path, ...] = (),
        label: str = "",
    ) -> None:
        self.label = label  # before each file's name in the lines: a blueprint's URL prefix
        self.static_dir = static_dir.resolve()
        # Folders inside the static folder that are never served fresh: the state dir, when the
        # static folder is the whole project (static at the site root).
        self.skip = tuple(p.resolve() for p in skip if self.static_dir in p.resolve().parents)
        self.public_url = public_url
        self.app_url = app_url
        self.prefix = static_prefix
        self.sink = sink
        self.on_result = on_result
        self.browser = browser
        self.guest_sha = guest_sha
        # observe=False: edits come through submit() (after a VM sync), not from the folder.
        self.observer: BaseObserver | None = None
        self.kind = "after each sync"
        if observe:
            self.observer, self.kind = make_observer(self.static_dir, polling)
        self._pending: dict[str, tuple[float, float]] = {}  # path -> (due, first seen)
        self._cond = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._run, daemon=True, name="static-watcher")
        self._warned: set[str] = set()
        self._pushed: dict[str, int] = {}  # path -> the edit already pushed to the tabs (browser)

    # -- events (observer thread) -----------------------------------------------------------------
    def on_any_event(self, event: FileSystemEvent) -> None:
        # The observer's thread: an exception here would end it, and with it every later check.
        try:
            self._on_event(event)
        except Exception as exc:  # any file name, any event: the watcher keeps watching
            self.sink.note("watcher", f"cannot follow {shown_name(str(event.src_path))}: {exc!r}")

    def _on_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write", "deleted"):
            return
        path = (
            str(getattr(event, "dest_path", "") or event.src_path)
            if event.event_type == "moved"
            else str(event.src_path)
        )
        try:  # judge the path inside the static folder: the folder itself may sit anywhere
            inside = Path(path).relative_to(self.static_dir).as_posix()
        except ValueError:
            return
        if rootstatic.kept_from_disk(inside) if self.prefix == "/" else rootstatic.is_dot_path(inside):
            return  # nginx never serves it from disk (a dot file; at the site root, code and config)
        if ignored(inside) or any(s == Path(path) or s in Path(path).parents for s in self.skip):
            return
        delay = CLOSED_GRACE if event.event_type == "closed" else DEBOUNCE
        now = time.monotonic()
        with self._cond:
            first = self._pending.get(path, (0.0, now))[1]
            self._pending[path] = (now + delay, first)
            # A name that is not UTF-8 has no URL a tab could be told: the watcher checks it alone.
            if event.event_type == "closed" and self.browser is not None and inside == shown_name(inside):
                # Complete on disk: the tabs can fetch it now, from this thread, while the worker
                # verifies it (one thread hand-off less between the save and the tab).
                handle = self.browser.static_changed(inside, first)
                if handle is not None:
                    older = self._pushed.pop(path, None)
                    if older is not None:
                        self.browser.static_verified(older, "", None)  # superseded by this save
                    self._pushed[path] = handle
            self._cond.notify()

    def submit(self, file: Path, seen: float) -> None:
        """Verify file now (it reached where it is served: the VM sync's ack); seen: the edit."""
        with self._cond:
            first = self._pending.get(str(file), (0.0, seen))[1]
            self._pending[str(file)] = (time.monotonic(), first)
            self._cond.notify()

    # -- checks (worker thread) -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    ready = [(due, p, seen) for p, (due, seen) in self._pending.items() if due <= now]
                    if ready:
                        for _, path, _ in ready:
                            del self._pending[path]
                        break
                    if self._pending:
                        self._cond.wait(min(d for d, _ in self._pending.values()) - now)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
            # In the order the edits settled: when the last-edited file is reported fresh, every
            # edit before it has been checked too.
            try:
                self.verify_batch([(Path(p), seen) for _, p, seen in sorted(ready)])
            except Exception as exc:  # a bug must not end the checks for the rest of the session
                self.sink.note("watcher", f"cannot verify {shown_name(ready[0][1])}: {exc!r}")

    def verify_batch(self, batch: list[tuple[Path, float]]) -> None:
        """Verify every file of one burst, one line each: the log proves each file's last edit."""
        for file, seen in batch:
            self.verify(file, seen)

    def verify(self, file: Path, seen: float) -> probes.Freshness | None:
        """Fetch file through the public URL; log fresh or STALE."""
        if not file.is_file():
            return None  # deleted again, or a folder
        try:
            raw = file.relative_to(self.static_dir).as_posix()
        except ValueError:
            return None
        rel = shown_name(raw)
        # The tabs fetch it through the same public URL meanwhile, and report the hash they got.
        browser = self.browser if raw == rel else None
        with self._cond:
            handle = self._pushed.pop(str(file), None)
        if handle is None and browser is not None:
            handle = browser.static_changed(rel, seen)
        result: probes.Freshness | None = None
        try:
            result = self._verify(file, rel, seen, handle)
        finally:
            if browser is not None and handle is not None and (result is None or not result.fresh):
                browser.static_verified(handle, "", None)
        return result

    def _verify(self, file: Path, rel: str, seen: float, handle: int | None) -> probes.Freshness | None:
        result: probes.Freshness | None = None
        for pause in (*RETRIES, None):
            try:
                result = probes.check_static(self.public_url, self.prefix, self.static_dir, file, timeout=5.0)
                result.relpath = shown_name(result.relpath)
            except OSError as exc:
                # A rewrite while nginx sent the file cuts the body short (IncompleteRead): that
                # edit's own event follows, so retry like a mismatch before saying anything.
                if pause is None:
                    if not self._superseded(file):
                        self.sink.note("watcher", f"cannot verify {rel}: {exc}")
                    return None
                time.sleep(pause)
                continue
            if result.fresh or pause is None:
                break
            time.sleep(pause)  # the editor may still be writing, or wrote again
        assert result is not None
        if not result.fresh and self._superseded(file):
            return None  # edited again meanwhile: that edit is queued, and its check is the one that counts
        elapsed = time.monotonic() - seen
        if self.on_result is not None:
            self.on_result(result, elapsed)
        if result.fresh:
            line = f"fresh  {self.label}{rel}  {elapsed * 1000:.0f} ms"
            if handle is not None and self.browser is not None:
                self.browser.static_verified(handle, result.disk_sha, line)
            else:
                self.sink.note("watcher", line)
            self._browser_note(result.headers)
        else:
            self.sink.note("watcher", self.stale_line(file, result))
        return result

    def _superseded(self, file: Path) -> bool:
        """A newer edit of file is queued: this check's verdict is moot."""
        with self._cond:
            return str(file) in self._pending

    def stale_line(self, file: Path, result: probes.Freshness) -> str:
        """STALE ... naming the first layer, from the disk outwards, that serves other bytes."""
        served = result.served_sha[:12] if result.served_sha else f"HTTP {result.status}"
        line = f"STALE {self.label}{result.relpath}: served {served} != disk {result.disk_sha[:12]}"
        ladder = probes.hash_ladder(
            self.static_dir,
            self.prefix,
            file,
            [("public URL", self.public_url), ("app server", self.app_url)],
            guest_sha=self.guest_sha,
        )
        public = next(rung for rung in ladder.rungs if rung.name == "public URL")
        guest = next((rung for rung in ladder.rungs if rung.name == "guest"), None)
        if guest is not None and guest.sha != ladder.disk.sha:
            return (
                line + f" — the guest's copy ({guest.sha[:12] or guest.detail}) is not the host's: the sync"
            )
        if httpcache.etag_kind(result.headers.get("etag")) == "werkzeug":
            return (
                line + " — the app server (gunicorn/Flask) answers for static, not nginx's "
                "static location; run `devstack doctor`"
            )
        if result.status == 404:
            return (
                line + f" — nginx maps {self.prefix}{result.relpath} to a path that does not "
                "exist (alias/location mismatch?); run `devstack doctor`"
            )
        if public.sha and public.sha != ladder.disk.sha:
            return (
                line + " — nginx serves an old copy of the file (sendfile on a shared folder, "
                "open_file_cache, or a proxy cache); run `devstack doctor`"
            )
        return line + f" — {public.detail or 'unknown layer'}; run `devstack doctor`"

    def _browser_note(self, headers: dict[str, str]) -> None:
        warning = httpcache.browser_warning(headers)
        if warning and warning not in self._warned:
            self._warned.add(warning)
            self.sink.note(
                "watcher",
                f"warning: served fresh, but {warning} — `devstack doctor` says where it comes from",
            )

    # -- service protocol -------------------------------------------------------------------------
    def start(self) -> None:
        if self.observer is not None:
            if self.skip:
                # Not one recursive watch: the state dir's log store takes thousands of writes a
                # second, and each would reach this handler. The folder itself, then each of
                # its folders but the ignored ones (as the app watcher does).
                self.observer.schedule(self, str(self.static_dir), recursive=False)
                with os.scandir(self.static_dir) as entries:
                    folders = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
                for folder in folders:
                    if folder not in self.skip and not ignored(folder.name + "/x"):
                        self.observer.schedule(self, str(folder), recursive=True)
            else:
                self.observer.schedule(self, str(self.static_dir), recursive=True)
            self.observer.start()
        self._worker.start()
        self.sink.note(
            "watcher",
            f"watching {self.static_dir} ({self.kind}): every edit is "
            f"fetched from {self.public_url}{self.prefix} and compared",
        )

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5.0)
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
