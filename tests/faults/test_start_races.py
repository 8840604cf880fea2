"""Races with a starting `up` (issue 29, item 6): a devstack.toml saved while `up --detach`
starts is applied (the config watcher's baseline is the bytes the loader read), and `down`
issued while an `up --detach` is starting stops what it started instead of saying "no stack"
and leaving a stack to come up. Real processes; the app echoes an [app.env] value."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.watch.configfile import ConfigWatcher
from tests.support.stack import (
    Project,
    cli_env,
    echo_project,
    processes_under,
    served,
    wait_for,
    write_mark,
)

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def start_up(project: Project) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--detach"],
        cwd=project.root,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.unit
def test_a_file_saved_before_the_watch_began_is_applied_when_it_begins(tmp_path: Path) -> None:
    path = tmp_path / "devstack.toml"
    path.write_bytes(b"saved while up started\n")
    changes: list[int] = []
    watcher = ConfigWatcher(path, lambda: changes.append(1), polling="always", baseline=b"as loaded\n")
    watcher.start()
    try:
        assert changes == [1]
    finally:
        watcher.stop()
    same = ConfigWatcher(path, lambda: changes.append(2), polling="always", baseline=path.read_bytes())
    same.start()
    same.stop()
    assert changes == [1]  # unchanged since the read: nothing to apply


def test_a_config_saved_while_up_starts_is_applied(tmp_path: Path) -> None:
    project = echo_project(tmp_path, "first")
    up = start_up(project)
    try:
        # The loader has read devstack.toml once the daemon records the stack as starting.
        assert wait_for(lambda: project.state().get("status") is not None, timeout=30)
        write_mark(project, "second")
        out, err = up.communicate(timeout=90)
        assert up.returncode == 0, out + err
        assert wait_for(lambda: served(project) == "mark=second", timeout=20), served(project)
    finally:
        project.down()
    assert not processes_under(project.root)


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.25, 0.5])
def test_down_while_up_starts_stops_it(tmp_path: Path, delay: float) -> None:
    project = echo_project(tmp_path, "x")
    up = start_up(project)
    try:
        # `up` has begun (a down before that is simply a down before an up): its start lock file.
        assert wait_for(lambda: (project.state_dir / "up.lock").exists(), timeout=30, interval=0.005)
        time.sleep(delay)
        down = project.cli("down", timeout=90)
        assert down.returncode == 0, down.stderr
        up.communicate(timeout=90)
        # A stack that survived the down would be answering within a second: fail as soon as it does.
        came_up = wait_for(lambda: served(project) != "", timeout=1.0)
        assert not came_up, f"{down.stderr!r}: the stack came up after down"
        assert not processes_under(project.root), down.stderr
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
        project.down()
