"""Guest logs on the host: one `agent follow` over the SSH master feeds the terminal (with the
usual prefixes and colors) and appends the same lines, guest timestamps kept, to the host's
.devstack/logs/<source>.log so `devstack logs` works on the host. The host copies go through
the same LogStore as local mode, so `[logs] max_bytes` / `backups` rotate them too.
"""

from __future__ import annotations

import subprocess
import threading

from devstack.logs.sink import LogMux
from devstack.logs.store import LogStore
from devstack.project.config import Config
from devstack.system.kill import stop_process
from devstack.vm import ssh
from devstack.vm.agent import GUEST_SRC, GUEST_STATE

STREAMS = {"o": "stdout", "e": "stderr", "d": "devstack"}


class LogMirror:
    def __init__(self, config: Config, terminal: LogMux) -> None:
        self.config = config
        self.terminal = terminal  # a LogMux without files: the host files get the raw lines
        self.log_dir = config.state_dir / "logs"
        self.proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = f"PYTHONPATH={GUEST_SRC} exec python3 -m devstack.vm.agent follow {GUEST_STATE}/logs"
        self.proc = ssh.popen(self.config, command)
        self._thread = threading.Thread(target=self._pump, daemon=True, name="vm-logs")
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        store = LogStore(
            self.log_dir,
            self.config.logs.max_bytes,
            self.config.logs.backups,
            lambda message: self.terminal.note("devstack", message),
        )
        for raw in self.proc.stdout:
            if not self.ready.is_set():
                if raw.strip() == b"following":
                    self.ready.set()
                continue
            source_b, _, line = raw.rstrip(b"\n").partition(b"\t")
            source = source_b.decode(errors="replace")
            if not source or "/" in source:
                continue
            store.write(source, line + b"\n")  # already "<guest time> <o|e|d> <text>"
            # "<time> <o|e|d> <text>" -> the terminal view, under the guest's source name.
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[1] in (b"o", b"e", b"d"):
                stream = STREAMS[parts[1].decode()]
                if stream == "devstack":
                    self.terminal.note(source, parts[2].decode("utf-8", "replace"))
                else:
                    self.terminal.feed(source, stream, parts[2] + b"\n")
        store.close()
        self.ready.set()

    def wait_ready(self, timeout: float = 30.0) -> bool:
        return self.ready.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        if self._thread is not None:
            self._thread.join(timeout=5)
