"""An unwritable or full log folder: a clear warning, and the stack and the live view go on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import probes
from tests.support.faults import serving, start_foreground, wait_status
from tests.support.require import require
from tests.support.stack import Project, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture(params=["full", "read-only"])
def bad_logs(request: pytest.FixtureRequest, project: Project) -> Iterator[str]:
    """.devstack/logs on a tiny tmpfs that is full, or mounted read-only."""
    require(can_mount(), "needs root (and mount) to mount a small tmpfs as the log folder")
    logs = project.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    options = "size=64k" if request.param == "full" else "size=64k,ro"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "devstack-fault", str(logs)], check=True)
    try:
        if request.param == "full":
            fd = os.open(logs / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, b"x" * 4096):
                    pass
            except OSError:
                pass  # ENOSPC: full
            finally:
                os.close(fd)
        yield request.param
    finally:
        project.down()
        subprocess.run(["umount", "-l", str(logs)], check=False)


def test_foreground_warns_and_keeps_serving_and_showing_logs(project: Project, bad_logs: str) -> None:
    fg = start_foreground(project)
    assert wait_status(project, "ready"), fg.output
    # Said at the first log line that cannot be written, which may come just after "ready".
    assert wait_for(lambda: "cannot write logs" in fg.output, timeout=10), fg.output
    assert fg.output.count("cannot write logs") == 1, "the warning is said once"
    # The live view goes on: requests made now show up on the terminal.
    probes.http_get(project.url + "/health?after-warning")
    assert wait_for(lambda: "/health?after-warning" in fg.output, timeout=10), fg.output
    assert serving(project)
    fg.proc.send_signal(signal.SIGINT)
    assert fg.wait() == 0, fg.output
    assert "Traceback" not in fg.output and "internal error" not in fg.output


def test_detached_warns_and_runs(project: Project, bad_logs: str) -> None:
    result = project.cli("up", "--detach")
    assert result.returncode == 0, result.stderr
    assert "cannot write" in result.stderr, result.stderr
    assert "internal error" not in result.stderr
    assert serving(project)
    assert project.cli("status").returncode == 0


def test_log_folder_is_a_file(project: Project) -> None:
    # Not even a folder: the same warning, not a crash.
    project.state_dir.mkdir(parents=True, exist_ok=True)
    (project.state_dir / "logs").write_text("not a folder\n")
    try:
        result = project.cli("up", "--detach")
        assert result.returncode == 0, result.stderr
        assert "cannot write" in result.stderr, result.stderr
        assert serving(project)
    finally:
        project.down()
        Path(project.state_dir / "logs").unlink(missing_ok=True)
