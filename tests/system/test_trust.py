"""What devstack acts on must be the invoking user's (or root's) and not writable by every user,
with every folder holding it (system/trust.py), as git's safe.directory. Real files and real
owners: root hands them to `nobody` with chown."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from devstack.system import trust
from tests.support.require import needs

pytestmark = [pytest.mark.unit, needs(os.getuid() == 0, "chown to another user needs root")]
NOBODY = pwd.getpwnam("nobody").pw_uid


def test_ones_own_file_in_ones_own_folders_is_trusted(tmp_path: Path) -> None:
    mine = tmp_path / "devstack.toml"
    mine.write_text("")
    assert trust.problem(str(mine), {}) is None
    assert trust.problem(str(tmp_path / "missing"), {}) is None  # nothing there to trust yet


def test_another_users_file_is_refused_naming_its_owner(tmp_path: Path) -> None:
    planted = tmp_path / "devstack.toml"
    planted.write_text("")
    os.chown(planted, NOBODY, -1)
    why = trust.problem(str(planted), {})
    assert why is not None and why.startswith("it belongs to nobody (uid")
    line = trust.message(str(planted), why)
    assert "\n" not in line and str(planted) in line and f"{trust.ALLOW}={tmp_path}" in line


def test_a_file_every_user_can_write_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "python"
    loose.write_text("")
    loose.chmod(0o777)
    assert trust.problem(str(loose), {}) == "it is writable by every user"


def test_a_folder_holding_it_counts_and_a_sticky_one_is_fine(tmp_path: Path) -> None:
    theirs = tmp_path / "shared"
    theirs.mkdir()
    mine = theirs / "project" / ".venv" / "bin"
    mine.mkdir(parents=True)
    python = mine / "python"
    python.write_text("")
    os.chown(theirs, NOBODY, -1)
    assert trust.problem(str(python), {}) is not None  # a folder another user owns holds it
    os.chown(theirs, 0, -1)
    theirs.chmod(0o777)
    assert trust.problem(str(python), {}) == "it is writable by every user"  # anyone can swap .venv
    theirs.chmod(0o1777)  # as /tmp: others cannot replace what is ours
    assert trust.problem(str(python), {}) is None


def test_the_user_can_allow_a_folder(tmp_path: Path) -> None:
    planted = tmp_path / "team" / "devstack.toml"
    planted.parent.mkdir()
    planted.write_text("")
    os.chown(planted, NOBODY, -1)
    assert trust.problem(str(planted), {trust.ALLOW: str(tmp_path / "other")}) is not None
    assert trust.problem(str(planted), {trust.ALLOW: str(tmp_path / "team")}) is None
    assert trust.problem(str(planted), {trust.ALLOW: "*"}) is None
