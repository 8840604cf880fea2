"""The ControlMaster socket's private directory: created 0700, refused when planted or shared."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.vm import sockdir

pytestmark = pytest.mark.unit


def test_created_private_under_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    path = sockdir.private_dir(environ={})
    assert path == tmp_path / f"devstack-{os.getuid()}"
    assert path.stat().st_mode & 0o777 == 0o700


def test_runtime_dir_preferred_when_ours(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    assert sockdir.private_dir(environ={"XDG_RUNTIME_DIR": str(runtime)}) == runtime / "devstack"


def test_shared_runtime_dir_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    runtime.chmod(0o777)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert sockdir.private_dir(environ={"XDG_RUNTIME_DIR": str(runtime)}).parent == tmp_path / "t"


@pytest.mark.parametrize("plant", ["open-mode", "symlink"])
def test_planted_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: str) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    target = tmp_path / f"devstack-{os.getuid()}"
    if plant == "open-mode":
        target.mkdir()
        target.chmod(0o777)
    else:
        elsewhere = tmp_path / "attacker"
        elsewhere.mkdir(mode=0o700)
        target.symlink_to(elsewhere)
    with pytest.raises(DevstackError) as err:
        sockdir.private_dir(environ={})
    assert str(target) in str(err.value) and "rm -rf" in str(err.value)


def test_only_our_real_socket_counts(tmp_path: Path) -> None:
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        assert sockdir.is_our_socket(sock_path)
        assert not sockdir.is_our_socket(sock_path, uid=os.getuid() + 1)
        link = tmp_path / "link.sock"
        link.symlink_to(sock_path)
        assert not sockdir.is_our_socket(link)
    plain = tmp_path / "plain"
    plain.write_text("")
    assert not sockdir.is_our_socket(plain)
    assert not sockdir.is_our_socket(tmp_path / "missing")
