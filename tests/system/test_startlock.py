"""The start lock (system/startlock.py): a head start takes it without waiting, or not at all when
another `up` holds it; `up` then gets that very lock instead of waiting for itself."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from devstack.system import startlock

pytestmark = pytest.mark.unit


def other_up_holds(state_dir: Path) -> int:
    """A second open file description: flock treats it as another `up`, even in this process."""
    fd = os.open(state_dir / startlock.NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def is_free(state_dir: Path) -> bool:
    try:
        os.close(other_up_holds(state_dir))
    except BlockingIOError:
        return False
    return True


def test_a_held_lock_means_no_head_start(tmp_path: Path) -> None:
    fd = other_up_holds(tmp_path)
    try:
        assert not startlock.hold(str(tmp_path))
        assert not startlock._held
    finally:
        os.close(fd)
    assert startlock.hold(str(tmp_path))
    assert not is_free(tmp_path)
    startlock.release_held()
    assert is_free(tmp_path)


def test_up_gets_the_lock_its_head_start_took(tmp_path: Path) -> None:
    assert startlock.hold(str(tmp_path))
    assert startlock.hold(str(tmp_path))  # the same one, not a second
    fd = startlock.acquire(tmp_path)  # returns at once: no wait for ourselves
    assert not startlock._held and not is_free(tmp_path)
    startlock.release_held()  # nothing left to release: `up` owns it now
    assert not is_free(tmp_path)
    os.close(fd)
    assert is_free(tmp_path)


def test_no_head_start_without_its_folder_or_through_a_link(tmp_path: Path) -> None:
    assert not startlock.hold(str(tmp_path / "missing"))
    (tmp_path / startlock.NAME).symlink_to(tmp_path / "elsewhere")
    assert not startlock.hold(str(tmp_path))
    assert not (tmp_path / "elsewhere").exists() and not startlock._held
