"""One running child: its own process group, its pipes read into the log sink."""

from __future__ import annotations

import collections
import enum
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from devstack import speed
from devstack.logs.sink import Sink
from devstack.stack.plan import ProcessSpec
from devstack.system import kill, spawn

if TYPE_CHECKING:
    import psutil

# Linux: the child asks the kernel for SIGTERM when devstack dies, even by kill -9, so a crashed
# supervisor leaves no orphan holding a port. The check on the parent closes the race where
# devstack died before prctl ran. PR_SET_PDEATHSIG survives exec.
_PDEATHSIG_SHIM = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None,use_errno=True).prctl(1,signal.SIGTERM)\n"
    "os.getppid()==int(sys.argv[1]) or sys.exit(70)\n"
    "os.execvp(sys.argv[2],sys.argv[2:])"
)


def wrapped_argv(argv: list[str]) -> list[str]:
    if sys.platform.startswith("linux"):
        return [sys.executable, "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid()), *argv]
    return argv


class ChildState(enum.Enum):
    """Where a child is in its life (Supervisor's states.py). Only the supervisor moves it."""

    STARTING = "starting"  # start() called, not returned yet
    RUNNING = "running"  # started; an exit event moves it on
    BACKOFF = "backoff"  # exited or failed to start: a retry is due at retry_at
    STOPPING = "stopping"  # asked to stop: its exit is expected, not a crash
    EXITED = "exited"  # stopped, or exited and not (yet) rescheduled
    FATAL = "fatal"  # given up on. devstack never gives up today (the backoff caps instead)


class Child:
    def __init__(self, spec: ProcessSpec, sink: Sink, on_exit: Callable[[Child, int], None]) -> None:
        self.spec = spec
        self.sink = sink
        self.on_exit = on_exit
        self.proc: subprocess.Popen[bytes] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self._readers: list[threading.Thread] = []
        # The supervisor's bookkeeping, kept with the child it describes.
        self.state = ChildState.EXITED
        self.started_at = 0.0  # on the supervisor's clock
        self.backoff = 0.0  # the last retry delay; 0: none yet (or reset)
        self.retry_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        env = {**os.environ, **self.spec.env}
        argv = wrapped_argv(self.spec.argv)
        early = None
        if self.spec.own_deathsig:  # gunicorn_conf.py: the same request without the shim's ~20 ms
            argv = self.spec.argv
            env["DEVSTACK_SUPERVISOR_PID"] = str(os.getpid())
            ahead, early = speed.adopt(argv, str(self.spec.cwd), env)  # spawned before the plan was
            # One that became the plan's is simply this start, made sooner: said only if it differs.
            if ahead is not None and early is None:
                self.sink.note(
                    self.spec.name,
                    f"started ahead of the config (pid {ahead}), but the plan differs: stopped",
                )
        self.tail.clear()
        self.proc = early or spawn.popen(argv, str(self.spec.cwd), env)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(
                target=self._pump,
                args=(self.proc.stdout.fileno(), "stdout"),
                daemon=True,
                name=f"{self.spec.name}-out",
            ),
            threading.Thread(
                target=self._pump,
                args=(self.proc.stderr.fileno(), "stderr"),
                daemon=True,
                name=f"{self.spec.name}-err",
            ),
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=self._wait, daemon=True, name=f"{self.spec.name}-wait").start()

    def _pump(self, fd: int, stream: str) -> None:
        source = self.spec.source(stream)
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.sink.feed(source, stream, data)
            # Keep the last lines for the exit report ("Worker failed to boot" and its cause).
            # Only the chunk's end is decoded: splitting all of a 64 KiB chunk per read cost
            # more than the whole multiplexer.
            for line in data[-4096:].decode("utf-8", "replace").splitlines()[-10:]:
                if line.strip():
                    self.tail.append(line)
        self.sink.end(source, stream)

    def _wait(self) -> None:
        proc = self.proc
        assert proc is not None
        code = proc.wait()
        # A leader that died (kill -9) can leave its workers behind in the group: clear them
        # first. They hold the pipes open (so the readers would wait for them) and the port (so
        # an orphaned nginx or gunicorn worker would keep serving and block the restart).
        kill.signal_group(proc.pid, signal.SIGKILL)
        for reader in self._readers:
            reader.join(timeout=2.0)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        self.on_exit(self, code)

    def cause(self) -> str:
        """The last output line naming an exception: why gunicorn could not load the app."""
        for line in reversed(self.tail):
            text = line.strip()
            head = text.split(":", 1)[0]
            if head.endswith(("Error", "Exception")) and " " not in head:
                return text[:200]
        # No exception: gunicorn's own last error ("Connection in use: ('127.0.0.1', 5001)").
        for line in reversed(self.tail):
            _, marker, message = line.partition("[ERROR] ")
            if marker:
                return message.strip()[:200]
        return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def signal_workers(self, sig: signal.Signals) -> int:
        """Signal the child's own children (gunicorn's workers). Returns how many were signalled."""
        if self.proc is None or self.proc.poll() is not None:
            return 0
        import psutil  # not at the top: the path to gunicorn's start skips its import

        count = 0
        try:
            workers = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return 0
        for worker in workers:
            try:
                worker.send_signal(sig)
                count += 1
            except psutil.Error:
                continue
        return count

    def workers(self) -> list[psutil.Process]:
        """The child's own children now (gunicorn's workers)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        from devstack.procs import retire

        return retire.workers_of(self.proc.pid)

    def stop(self, grace: float = 5.0) -> None:
        """TERM the whole group, wait, then KILL what is left."""
        proc = self.proc
        if proc is None:
            return
        first = signal.Signals[self.spec.stop_signal]
        # SIGQUIT is a master's quick stop (gunicorn), which it passes to its workers: sent to
        # the group too, a gthread worker got it twice and could deadlock in its handler until
        # graceful_timeout (1 down in 3 took 3 s).
        quick = first is signal.SIGQUIT
        kill.stop_group(proc.pid, first, grace, exited=lambda: proc.poll() is not None, leader_only=quick)
        kill.signal_group(proc.pid, signal.SIGKILL)  # a worker that outlived its gone master
        try:
            proc.wait(timeout=kill.KILL_WAIT)
        except subprocess.TimeoutExpired:
            pass
