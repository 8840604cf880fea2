"""A symlink planted in .devstack/ is never followed: logs, state, nginx.conf (real files)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from devstack.logs import reader
from devstack.logs.sink import LogMux
from devstack.stack import state
from devstack.system import safefs
from devstack.system.safefs import HostileFile

pytestmark = pytest.mark.unit

PRECIOUS = b"the user's own file\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_bytes(PRECIOUS)
    return path


def test_the_log_store_refuses_a_planted_log_file_link(tmp_path: Path, victim: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").symlink_to(victim)
    screen = io.BytesIO()
    mux = LogMux(logs, screen)
    for i in range(3):
        mux.feed("app", "stdout", b"line %d\n" % i)
    mux.feed("other", "stdout", b"other source\n")
    mux.close()
    assert victim.read_bytes() == PRECIOUS
    shown = screen.getvalue().decode()
    warnings = [line for line in shown.splitlines() if "warning" in line]
    assert len(warnings) == 1, shown
    assert f"{logs / 'app.log'} is a symbolic link (pointing to {victim})" in warnings[0]
    assert f"rm {logs / 'app.log'}" in warnings[0]
    assert "| line 2" in shown  # the live view goes on
    assert b"other source" in (logs / "other.log").read_bytes()  # so do the other files


def test_the_log_store_refuses_a_linked_log_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "logs").symlink_to(elsewhere)
    screen = io.BytesIO()
    mux = LogMux(tmp_path / "logs", screen)
    mux.feed("app", "stdout", b"hello\n")
    mux.close()
    assert list(elsewhere.iterdir()) == []
    assert screen.getvalue().decode().count("is a symbolic link") == 1


def test_rotation_moves_a_planted_link_and_never_writes_through_it(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "app.log.1").symlink_to(victim)
    mux = LogMux(tmp_path, None, max_bytes=512, backups=3)

    def links() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir() if p.is_symlink())

    for i in range(20):  # one rotation (~40 bytes a stamped line)
        mux.feed("app", "stdout", b"line %04d\n" % i)
    # The link was renamed along (rename never follows), never opened for writing...
    assert links() == ["app.log.2"]
    assert victim.read_bytes() == PRECIOUS
    for i in range(20, 100):
        mux.feed("app", "stdout", b"line %04d\n" % i)
    mux.close()
    # ...and dropped past the last backup, its target untouched.
    assert links() == []
    assert victim.read_bytes() == PRECIOUS


def test_a_link_appearing_while_running_is_refused_then_writing_works_again(
    tmp_path: Path, victim: Path
) -> None:
    screen = io.BytesIO()
    mux = LogMux(tmp_path, screen, max_bytes=256, backups=1)
    mux.feed("app", "stdout", b"x" * 300 + b"\n")  # rotates: app.log is reopened on the next line
    (tmp_path / "app.log").symlink_to(victim)
    mux.feed("app", "stdout", b"refused\n")
    (tmp_path / "app.log").unlink()
    mux.feed("app", "stdout", b"written again\n")
    mux.close()
    assert victim.read_bytes() == PRECIOUS
    shown = screen.getvalue().decode()
    assert shown.count("is a symbolic link") == 1 and "works again" in shown
    assert b"written again" in (tmp_path / "app.log").read_bytes()


def test_state_json_is_never_read_or_replaced_through_a_link(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "state.json").symlink_to(victim)
    with pytest.raises(HostileFile, match=r"state\.json is a symbolic link .* remove it"):
        state.write(tmp_path, state.StackState(url="http://127.0.0.1:5000"))
    with pytest.raises(HostileFile):
        state.read(tmp_path)
    assert victim.read_bytes() == PRECIOUS


def test_state_json_temporary_name_planted_as_a_link(tmp_path: Path, victim: Path) -> None:
    (tmp_path / f".state.json.tmp.{os.getpid()}").symlink_to(victim)
    with pytest.raises(HostileFile):
        state.write(tmp_path, state.StackState())
    assert victim.read_bytes() == PRECIOUS
    assert not (tmp_path / "state.json").exists()


def test_state_round_trip_without_links(tmp_path: Path) -> None:
    state.write(tmp_path / ".devstack", state.StackState(url="http://x", status="ready"))
    got = state.read(tmp_path / ".devstack")
    assert got is not None and got.url == "http://x" and got.status == "ready"
    assert (tmp_path / ".devstack" / "state.json").stat().st_mode & 0o777 == 0o644


def test_the_reader_refuses_a_linked_log(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "app.log").symlink_to(victim)
    for lines in (None, 5):
        with pytest.raises(HostileFile, match=r"app\.log is a symbolic link"):
            list(reader.history(tmp_path, ["app"], lines, None, reader.Snapshot()))


@pytest.mark.parametrize(
    "planted", ["nginx.pid", "nginx.conf", "tmp/client_body", "logs", "logs/nginx.access.log"]
)
def test_check_tree_names_the_planted_link(tmp_path: Path, victim: Path, planted: str) -> None:
    state_dir = tmp_path / ".devstack"
    (state_dir / "tmp").mkdir(parents=True)
    (state_dir / "logs").mkdir()
    link = state_dir / planted
    if link.exists():
        link.rmdir()
    link.symlink_to(victim if "." in planted else tmp_path)
    with pytest.raises(HostileFile) as caught:
        safefs.check_tree(state_dir)
    message = str(caught.value)
    assert message.startswith(f"{link} is a symbolic link") and f"rm {link}" in message
    assert "\n" not in message


def test_write_text_replaces_atomically_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "nginx.conf"
    safefs.write_text(target, "one\n")
    safefs.write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["nginx.conf"]
