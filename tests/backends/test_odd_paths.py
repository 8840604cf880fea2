"""Project paths as users have them: deep (past the 108-byte unix socket limit), with spaces,
`$`, quotes and non-ASCII. The stack starts, serves the static folder fresh, and stops clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devstack.stack import livepaths as paths
from devstack.stack import probes
from tests.support.stack import EXAMPLE, Project, free_ports, kill_leftovers, processes_under

pytestmark = pytest.mark.needs_nginx

ODD = "my proj $HOME 'q' \"dq\" ünï"


@pytest.mark.parametrize("deep", [False, True], ids=["odd-name", "odd-and-deep"])
def test_odd_project_path(tmp_path: Path, deep: bool) -> None:
    base = tmp_path / ODD
    if deep:
        base = base.joinpath(*["nested-folder-level"] * 5)
    root = base / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    project = Project(root, *free_ports(2))
    project.write_config()
    if deep:
        assert len(str(project.state_dir / "gunicorn.ctl").encode()) > 108
    sockets = paths.socket_dir(project.state_dir)  # a `$` path or a deep one: the short folder
    assert sockets != project.state_dir.resolve()
    try:
        result = project.up_detached()
        assert "Traceback" not in result.stderr
        assert probes.http_get(project.url + "/").status == 200
        css = root / "static" / "css" / "app.css"
        css.write_text(css.read_text() + "\n/* edited */\n")
        served = probes.http_get(project.url + "/static/css/app.css")
        assert served.status == 200 and served.body == css.read_bytes()
        status = project.cli("status")
        assert status.returncode == 0 and "gunicorn" in status.stdout
        assert project.cli("doctor").returncode == 0
    finally:
        project.down()
        left = processes_under(root)
        kill_leftovers(root)
    assert not left, "processes left behind"
    assert not sockets.exists(), f"{sockets} left in the temp dir after down"
