"""The host's copies of guest logs rotate like local ones (a real pipe feeding the mirror)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devstack.logs.sink import LogMux
from devstack.vm import mirror, ssh
from tests.vm.test_vm_units import _project


def test_mirrored_guest_logs_rotate_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _project(tmp_path)
    with open(config.root / "devstack.toml", "a", encoding="utf-8") as handle:
        handle.write("\n[logs]\nmax_bytes = 4096\nbackups = 2\n")
    from devstack.project.config import load

    config = load(config.root / "devstack.toml")
    # What `agent follow` prints: "following", then "<source>\t<time> <o|e|d> <text>" lines.
    feed = tmp_path / "feed"
    lines = [f"gunicorn\t2026-12-02T10:00:00.{i:06d}Z o request {i:05d} " + "x" * 60 for i in range(400)]
    feed.write_text("following\n" + "\n".join(lines) + "\n", encoding="utf-8")
    # Stand in for the ssh stream with a real process writing the same bytes to a pipe.
    monkeypatch.setattr(
        ssh, "popen", lambda _c, _cmd: subprocess.Popen(["cat", str(feed)], stdout=subprocess.PIPE)
    )
    terminal = LogMux(None)  # no live view: only the host files are under test
    log_mirror = mirror.LogMirror(config, terminal)
    log_mirror.start()
    assert log_mirror.wait_ready(10)
    assert log_mirror._thread is not None
    log_mirror._thread.join(10)
    log_mirror.stop()
    logs = config.state_dir / "logs"
    files = {p.name for p in logs.glob("gunicorn.log*")}
    # Two generations kept (backups = 2), the oldest dropped; the current file may be fresh-empty.
    assert (
        {"gunicorn.log.1", "gunicorn.log.2"} <= files <= {"gunicorn.log", "gunicorn.log.1", "gunicorn.log.2"}
    )
    assert all(p.stat().st_size <= 4096 + 200 for p in logs.glob("gunicorn.log*"))
    order = ["gunicorn.log.2", "gunicorn.log.1", "gunicorn.log"]
    kept = b"".join((logs / name).read_bytes() for name in order if name in files)
    # The newest lines survive, whole and in order, with the guest's timestamps.
    assert kept.endswith((lines[-1].split("\t", 1)[1] + "\n").encode())
    tail = kept.decode().splitlines()
    numbers = [int(line.split("request ")[1][:5]) for line in tail]
    assert numbers == list(range(numbers[0], 400))
