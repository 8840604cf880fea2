"""Where the stack's unix sockets and nginx's view of the static folder go (stack/livepaths.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.stack import livepaths as paths

pytestmark = pytest.mark.unit


def test_short_state_dir_keeps_its_sockets(tmp_path: Path) -> None:
    state = tmp_path / ".devstack"
    assert paths.socket_dir(state) == state.resolve()
    assert paths.control_socket(state) == state.resolve() / "gunicorn.ctl"


def test_deep_or_dollar_paths_get_a_short_private_folder(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 5) / ".devstack"
    dollar = tmp_path / "my $HOME" / ".devstack"
    for state in (deep, dollar):
        folder = paths.socket_dir(state)
        assert folder != state.resolve() and len(str(folder / paths.LONGEST)) <= paths.SUN_PATH_MAX
        assert "$" not in str(folder)
    assert paths.socket_dir(deep) != paths.socket_dir(dollar)  # one folder per project


def test_static_alias_goes_through_a_link_only_for_dollar(tmp_path: Path) -> None:
    state = tmp_path / ".devstack"
    assert paths.static_alias(state, tmp_path / "static") == tmp_path / "static"
    odd_state = tmp_path / "a$b" / ".devstack"
    link = paths.static_alias(odd_state, tmp_path / "a$b" / "static")
    assert "$" not in str(link) and link.name == "static-link"


def test_a_squatted_socket_folder_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "my $HOME" / ".devstack"
    folder = paths.socket_dir(state)
    try:
        os.mkdir(folder, 0o755)  # somebody made it first, readable by others
        with pytest.raises(DevstackError, match="not a private folder"):
            paths.ensure_socket_dir(state)
        os.chmod(folder, 0o700)
        assert paths.ensure_socket_dir(state) == folder
    finally:
        os.rmdir(folder)


def test_the_short_folder_goes_once_the_stack_stops(tmp_path: Path) -> None:
    state = tmp_path / "my $HOME" / ".devstack"
    folder = paths.ensure_socket_dir(state)
    for name in paths.SOCKET_NAMES:
        (folder / name).write_bytes(b"")  # stands in for the sockets and the static link
    paths.remove_socket_dir(state)
    assert not folder.exists()
    paths.remove_socket_dir(state)  # already gone: nothing to do, no error


def test_a_short_folder_holding_anything_else_is_kept(tmp_path: Path) -> None:
    state = tmp_path.joinpath(*["a-rather-long-folder-name"] * 5) / ".devstack"
    folder = paths.ensure_socket_dir(state)
    try:
        (folder / "live.sock").write_bytes(b"")
        (folder / "not-ours").write_bytes(b"")
        paths.remove_socket_dir(state)
        assert sorted(p.name for p in folder.iterdir()) == ["not-ours"]
    finally:
        (folder / "not-ours").unlink()
        os.rmdir(folder)


def test_sockets_in_the_state_dir_are_left_to_it(tmp_path: Path) -> None:
    state = tmp_path / ".devstack"
    state.mkdir()
    (state / "live.sock").write_bytes(b"")
    paths.remove_socket_dir(state)
    assert (state / "live.sock").exists()
