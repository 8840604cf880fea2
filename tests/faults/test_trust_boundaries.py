"""Nothing runs from a file another user controls, and `down` signals only what is ours
(issue 29, item 1): a devstack.toml and an interpreter planted in a folder every user can write,
a cache folder another user owns (`sudo -E` keeps XDG_CACHE_HOME), a planted state.json, and a
state.json naming another user's process. Real files, real owners (root hands them to
`nobody`), the real CLI."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.system import procstat
from tests.support.require import needs
from tests.support.stack import Project, cli_env, processes_under, wait_for

pytestmark = [pytest.mark.faults, needs(os.getuid() == 0, "planting another user's files needs root")]
NOBODY = pwd.getpwnam("nobody")


def devstack(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_config_and_python_planted_in_a_shared_parent_never_run(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # a folder every user can write, not sticky
    marker = tmp_path / "ran"
    python = shared / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    python.chmod(0o755)
    (shared / "devstack.toml").write_text('[app]\nwsgi = "evil:app"\n')
    for path in (shared / "devstack.toml", shared / ".venv", python.parent, python):
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    victim = shared / "victim"  # the victim's own folder, without a devstack.toml of its own
    victim.mkdir()
    for args in (["up", "--detach"], ["up", "--timeout", "5"], ["status"], ["down"], ["doctor"]):
        result = devstack(victim, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert f"refusing {shared / 'devstack.toml'}: it belongs to nobody" in lines[0], lines[0]
    # A head start would have run it within half a second: fail as soon as it has.
    assert not wait_for(marker.exists, timeout=0.5), "the planted interpreter was run"
    assert not (shared / ".devstack").exists()
    assert not processes_under(shared)


def test_a_cache_folder_another_user_owns_is_not_used(project: Project, tmp_path: Path) -> None:
    cache = tmp_path / "their-cache"
    (cache / "devstack").mkdir(parents=True)
    os.chown(cache, NOBODY.pw_uid, NOBODY.pw_gid)
    os.chown(cache / "devstack", NOBODY.pw_uid, NOBODY.pw_gid)
    try:
        up = project.cli("up", "--detach", env=cli_env(XDG_CACHE_HOME=str(cache)))
        assert up.returncode == 0, up.stderr
        warned = [line for line in up.stderr.splitlines() if "refusing" in line]
        assert len(warned) == 1 and f"{cache / 'devstack'}: it belongs to nobody" in warned[0], up.stderr
        assert list((cache / "devstack").iterdir()) == []  # nothing written there
    finally:
        project.down()


def test_down_refuses_a_planted_state_json(project: Project, tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        project.state_dir.mkdir(exist_ok=True)
        record = {"pid": victim.pid, "create_time": procstat.started_at(victim.pid)}
        planted = project.state_dir / "state.json"
        planted.write_text(
            json.dumps({"status": "ready", "supervisor": record, "processes": {"nginx": record}})
        )
        os.chown(planted, NOBODY.pw_uid, NOBODY.pw_gid)
        down = project.down()
        assert down.returncode == 1, down.stderr
        assert f"refusing {planted}: it belongs to nobody" in down.stderr
        assert victim.poll() is None, "down signalled a process a planted state.json named"
    finally:
        victim.kill()
        victim.wait()


def test_down_never_signals_another_users_process(project: Project) -> None:
    def as_nobody() -> None:
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)

    theirs = subprocess.Popen(["sleep", "60"], start_new_session=True, preexec_fn=as_nobody)
    try:
        project.state_dir.mkdir(exist_ok=True)
        record = {"pid": theirs.pid, "create_time": procstat.started_at(theirs.pid)}
        (project.state_dir / "state.json").write_text(
            json.dumps({"status": "ready", "supervisor": record, "processes": {"gunicorn": record}})
        )
        down = project.down()
        assert down.returncode == 0, down.stderr
        assert theirs.poll() is None, "down signalled another user's process"
    finally:
        theirs.kill()
        theirs.wait()
