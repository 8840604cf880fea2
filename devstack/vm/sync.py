"""File sync for rsync folders, started by `up --vm` itself: one rsync at start, then every host
change sent over ONE long-lived SSH channel to the guest's receiver (`agent receive`).

`vagrant rsync-auto` runs a whole rsync, with a new SSH connection, per change; here a change
costs one frame on an open pipe. After a static file lands, the freshness watcher proves it is
served fresh through the forwarded port, and says which copy is stale when it is not.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from devstack import probes
from devstack.config import Config
from devstack.errors import DevstackError, Exit
from devstack.procs import kill
from devstack.vm import ssh, vagrantfile
from devstack.vm.agent import GUEST_SRC
from devstack.watch.observers import ignored

DEBOUNCE = 0.02  # editors save in bursts: send the settled file once
FRESH_TIMEOUT = 10.0


def initial_sync(config: Config) -> float:
    """rsync the project into the guest over the master connection. Returns seconds taken."""
    started = time.monotonic()
    argv = [*ssh.rsync_argv(config), "-a", "--delete", "--copy-links"]
    for pattern in vagrantfile.SYNC_EXCLUDES:
        argv += ["--exclude", pattern]
    argv += [f"{config.root.resolve()}/", f"{ssh.HOST}:{config.vm.guest_path.rstrip('/')}/"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise DevstackError(
            f"initial sync into the VM failed: {result.stderr.strip()[-200:]} — "
            "check that rsync is installed on the host and in the box",
            Exit.VM,
        )
    return time.monotonic() - started


class Syncer(FileSystemEventHandler):
    def __init__(
        self, config: Config, on_synced: Callable[[str, float], None], on_error: Callable[[str], None]
    ) -> None:
        self.config = config
        self.root = config.root.resolve()
        self.on_synced = on_synced  # (relative path, seconds from event to guest ack)
        self.on_error = on_error
        self.proc: subprocess.Popen[bytes] | None = None
        self.observer = Observer()
        self._dirty: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0

    # -- watchdog side -------------------------------------------------------------------------
    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        now = time.monotonic()
        for raw in (event.src_path, getattr(event, "dest_path", "") or ""):
            path = os.fsdecode(raw)
            if not path or ignored(path) or path.endswith(".devstack-sync"):
                continue
            try:
                rel = Path(path).relative_to(self.root).as_posix()
            except ValueError:
                continue
            if rel in (".", ""):
                continue
            with self._lock:
                self._dirty.setdefault(rel, now)
            self._wake.set()

    # -- sender side ---------------------------------------------------------------------------
    def start(self) -> None:
        guest_root = self.config.vm.guest_path
        command = f"PYTHONPATH={GUEST_SRC} exec python3 -m devstack.vm.agent receive {guest_root}"
        self.proc = ssh.popen(self.config, command)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if first.strip() != b"ready":
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise DevstackError(
                f"the sync receiver in the VM did not start: {err.strip()[-200:]}"
                " — `devstack down --destroy`, then `devstack up --vm`",
                Exit.VM,
            )
        self.observer.schedule(self, str(self.root), recursive=True)
        self.observer.start()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="vm-sync")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            if self._stopping.is_set():
                return
            self._wake.clear()
            time.sleep(DEBOUNCE)
            with self._lock:
                batch, self._dirty = self._dirty, {}
            for rel, seen in sorted(batch.items()):
                try:
                    sent = self._send(rel)
                except (OSError, ValueError) as exc:
                    self.on_error(f"sync of {rel} failed: {exc}")
                    continue
                if sent:  # deletes of editors' temp files are sent, not announced
                    self.on_synced(rel, time.monotonic() - seen)

    def _send(self, rel: str) -> bool:
        """One frame, one ack. True for a file written in the guest."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        local = self.root / rel
        self._seq += 1
        if local.is_file():
            data = local.read_bytes()
            st = local.stat()
            header = {
                "op": "put",
                "path": rel,
                "size": len(data),
                "mode": st.st_mode & 0o777,
                "mtime_ns": st.st_mtime_ns,
                "seq": self._seq,
            }
            payload = json.dumps(header).encode() + b"\n" + data
        elif local.is_dir():
            return False  # folders are created with the first file put into them
        else:
            payload = json.dumps({"op": "del", "path": rel, "seq": self._seq}).encode() + b"\n"
        proc.stdin.write(payload)
        proc.stdin.flush()
        reply = proc.stdout.readline().decode(errors="replace").strip()
        if not reply.startswith(f"ok {self._seq}"):
            raise OSError(reply or "the receiver in the VM went away")
        return local.is_file()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.observer.stop()
        self.observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.proc is not None and self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)  # stdin closed: the receiver ends by itself
            except subprocess.TimeoutExpired:
                kill.stop_process(self.proc, grace=2.0)


class FreshnessWatcher:
    """Checks each synced static file through the forward, on its own thread: a slow or stale
    check never holds up the next sync, and a check a newer edit made moot is dropped."""

    def __init__(self, config: Config, base_url: str, report: Callable[[str], None]) -> None:
        self.config = config
        self.base_url = base_url
        self.report = report
        self._generation: dict[str, int] = {}
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="vm-fresh")

    def start(self) -> None:
        self._thread.start()

    def synced(self, rel: str) -> None:
        generation = self._generation.get(rel, 0) + 1
        self._generation[rel] = generation
        self._queue.put((rel, generation))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            rel, generation = item
            if self._generation.get(rel) != generation:
                continue  # a newer edit of the same file is queued: check that one

            def superseded(rel: str = rel, generation: int = generation) -> bool:
                return self._generation.get(rel) != generation

            _fresh, line = verify_fresh(self.config, self.base_url, rel, superseded=superseded)
            if line:
                self.report(line)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=FRESH_TIMEOUT + 5)


def verify_fresh(
    config: Config,
    base_url: str,
    rel: str,
    timeout: float = FRESH_TIMEOUT,
    superseded: Callable[[], bool] = lambda: False,
) -> tuple[bool, str]:
    """A synced static file, fetched through the forward until its bytes equal the host's.

    Returns (fresh, a line for the log). When it stays stale, the hash ladder says which copy
    differs: host disk -> guest copy -> served through the forward.
    """
    path = config.root.resolve() / rel
    static_dir = config.static_dir
    if not path.is_file() or static_dir not in path.resolve().parents:
        return True, ""
    started = time.monotonic()
    last: probes.Freshness | None = None
    while time.monotonic() - started < timeout:
        if superseded():
            return True, ""
        try:
            last = probes.check_static(base_url, config.static.url, static_dir, path, timeout=3.0)
        except OSError:
            last = None
        if last is not None and last.fresh:
            return True, (
                f"fresh through :{config.vm.host_port}: {last.relpath} "
                f"({(time.monotonic() - started) * 1000:.0f} ms after the sync)"
            )
        time.sleep(0.05)
    rel_static = path.relative_to(static_dir).as_posix()
    guest_file = f"{config.vm.guest_path.rstrip('/')}/{rel}"
    code, out, _ = ssh.run(config, f"sha256sum {guest_file!r}", timeout=15)
    guest_sha = out.split()[0] if code == 0 and out.split() else "?"
    disk_sha = probes.sha256_file(path)
    served = last.served_sha if last is not None else "-"
    rung = (
        "the guest copy is stale (sync)" if guest_sha != disk_sha else "nginx in the guest serves old bytes"
    )
    return False, (
        f"STALE through :{config.vm.host_port}: {rel_static}: host {disk_sha[:12]}, "
        f"guest {guest_sha[:12]}, served {served[:12] or '-'} — {rung}"
    )
