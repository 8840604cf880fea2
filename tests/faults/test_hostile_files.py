"""A symlink planted in .devstack/ stops `up` with one line naming it and the fix; nothing is
written through it, nothing is left running; `status` and `down` refuse it the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import Project, processes_under

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]

PRECIOUS = "the user's own file\n"

# (what is planted, whether it points at a folder)
PLANTED = [
    ("logs/gunicorn.log", False),
    ("logs/supervisor.out", False),
    ("logs", True),
    ("nginx.pid", False),
    ("nginx.conf", False),
    ("tmp/client_body", True),
    ("state.json", False),
]


@pytest.mark.parametrize(("planted", "is_dir"), PLANTED, ids=[p for p, _ in PLANTED])
@pytest.mark.parametrize("mode", ["detach", "foreground"])
def test_up_refuses_a_planted_symlink(
    project: Project, tmp_path: Path, planted: str, is_dir: bool, mode: str
) -> None:
    victim_dir = tmp_path / "victim-dir"
    victim_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text(PRECIOUS)
    link = project.state_dir / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim_dir if is_dir else victim)

    args = ("up", "--detach") if mode == "detach" else ("up",)
    result = project.cli(*args, timeout=30)

    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [ln for ln in result.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1, result.stderr
    assert f"{link} is a symbolic link" in errors[0] and f"rm {link}" in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    assert victim.read_text() == PRECIOUS
    assert list(victim_dir.iterdir()) == []
    assert not processes_under(project.root)
    # Removing the link is the whole fix.
    link.unlink()
    if mode == "detach":
        project.up_detached()
        assert project.cli("status").returncode == 0


def test_status_and_down_refuse_a_linked_state_file(stack: Project, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(PRECIOUS)
    real = stack.state_dir / "state.json"
    saved = stack.state_dir / "state.json.saved"
    real.rename(saved)
    real.symlink_to(victim)
    try:
        for args in (("status",), ("status", "--json"), ("down",)):
            result = stack.cli(*args)
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            assert f"{real} is a symbolic link" in result.stderr, result.stderr
        assert victim.read_text() == PRECIOUS
    finally:
        real.unlink()
        saved.rename(real)
    assert stack.cli("down").returncode == 0
