"""File sync for rsync folders, started by `up --vm` itself: one rsync at start, then every host
change sent over ONE long-lived SSH channel to the guest's receiver (`agent receive`).

`vagrant rsync-auto` runs a whole rsync, with a new SSH connection, per change; here a change
costs one frame on an open pipe. Each file the guest acknowledged is reported (on_synced): the
VM backend hands static ones to the freshness watcher (watch/fresh.py), as local mode does.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from devstack.errors import DevstackError, Exit
from devstack.project.config import Config
from devstack.system import kill, runner
from devstack.vm import ssh, vagrantfile
from devstack.vm.agent import GUEST_SRC
from devstack.watch.observers import ignored

DEBOUNCE = 0.02  # editors save in bursts: send the settled file once
# ...unless inotify says the writer closed it: then it is complete, and sent at once.
FRESH_TIMEOUT = 10.0


def initial_sync(config: Config) -> float:
    """rsync the project into the guest over the master connection. Returns seconds taken."""
    started = time.monotonic()
    argv = [*ssh.rsync_argv(config), "-a", "--delete", "--copy-links"]
    for pattern in vagrantfile.SYNC_EXCLUDES:
        argv += ["--exclude", pattern]
    argv += [f"{config.root.resolve()}/", f"{ssh.HOST}:{config.vm.guest_path.rstrip('/')}/"]
    result = runner.run(argv, timeout=300)
    if not result.ok:
        raise DevstackError(
            f"initial sync into the VM failed: {result.err.strip()[-200:]} — "
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
        self._dirty: dict[str, tuple[float, float]] = {}  # path -> (due, first seen)
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
        due = now if event.event_type == "closed" else now + DEBOUNCE
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
                self._dirty[rel] = (due, self._dirty.get(rel, (due, now))[1])
            self._wake.set()

    # -- sender side ---------------------------------------------------------------------------
    def open(self) -> None:
        """Start the guest's receiver (a Python start in the guest: do it while the guest is idle)."""
        guest_root = self.config.vm.guest_path
        command = f"PYTHONPATH={GUEST_SRC} exec python3 -m devstack.vm.agent receive {guest_root}"
        self.proc = ssh.popen(self.config, command)

    def start(self) -> None:
        if self.proc is None:
            self.open()
        assert self.proc is not None and self.proc.stdout is not None
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
        pause = 0.5
        while not self._stopping.is_set():
            self._wake.wait(pause)
            if self._stopping.is_set():
                return
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                batch = {rel: seen for rel, (due, seen) in self._dirty.items() if due <= now}
                for rel in batch:
                    del self._dirty[rel]
                pause = max(0.0, min((due for due, _ in self._dirty.values()), default=now + 0.5) - now)
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
        if self.observer.is_alive():  # not when `up` failed between open() and start()
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
