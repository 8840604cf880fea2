"""Security: loopback only, no way out of the static folder, no listing, no secrets printed,
no world-writable state."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from devstack.stack import probes
from tests.support.faults import (
    SECRET,
    plant_secrets,
    raw_get,
    serving,
    start_foreground,
    tree,
    try_traversals,
    wait_status,
)
from tests.support.stack import Project, cli_env

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def test_every_listener_is_on_loopback(stack: Project) -> None:
    pids = {p.pid for p in tree(stack)}
    listeners = [
        c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert listeners, "no listening socket found for the stack"
    for conn in listeners:
        assert getattr(conn.laddr, "ip", None) in ("127.0.0.1", "::1"), conn
    ports = {getattr(c.laddr, "port", None) for c in listeners}
    assert ports == {stack.public_port, stack.app_port}, ports


def test_no_traversal_no_symlink_escape_no_listing(project: Project) -> None:
    plant_secrets(project)
    project.up_detached()
    attempts = try_traversals(project)
    assert len(attempts) > 200
    leaks = [a for a in attempts if a.leaked]
    assert not leaks, leaks
    listings = [a for a in attempts if a.listing]
    assert not listings, listings
    # Refused, not served: nothing outside the folder answered 200.
    served = [a for a in attempts if a.status == 200]
    assert not served, served
    # The static folder itself still works, and symlinks inside it are refused.
    assert raw_get(project.public_port, "/static/css/app.css")[0] == 200
    assert raw_get(project.public_port, "/static/link-out")[0] == 403  # disable_symlinks
    assert serving(project)


def test_no_autoindex_by_default(stack: Project) -> None:
    for path in ("/static/", "/static/css/", "/static/js/"):
        resp = probes.http_get(stack.url + path)
        assert resp.status == 403, (path, resp.status)  # a folder without an index, no listing
        assert b"Index of" not in resp.body


def test_env_values_are_never_printed(project: Project) -> None:
    # .env reaches the extra processes; a malformed line must not be echoed either.
    (project.root / ".env").write_text(f"DOTENV_SECRET={SECRET}-dotenv\n{SECRET} broken line\n")
    (project.root / "idle.py").write_text("import time\ntime.sleep(600)\n")
    project.write_config(
        extra=f"[app.env]\nAPI_TOKEN = \"{SECRET}-toml\"\n[processes]\nidle = '{sys.executable} idle.py'\n"
    )
    outputs = []
    outputs.append(project.up_detached())
    for args in (("status",), ("status", "--json"), ("logs",), ("up", "--detach"), ("down",)):
        outputs.append(project.cli(*args))
    fg = start_foreground(project)
    assert wait_status(project, "ready")
    fg.proc.terminate()
    fg.wait()
    # A config error next to the secret must name the key, not print the table.
    project.write_config(extra=f'[app.env]\nAPI_TOKEN = "{SECRET}-toml"\nPORT = 5000\n')
    outputs.append(project.cli("up"))
    assert "app.env" in outputs[-1].stderr
    texts = [o.stdout + o.stderr for o in outputs] + [fg.output]
    for path in project.state_dir.rglob("*"):
        if path.is_file() and path.name not in ("gunicorn.log",):  # the app's own output
            texts.append(path.read_text(errors="replace"))
    assert not [t for t in texts if SECRET in t]


def _world_writable(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & stat.S_IWOTH and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
            found.append(f"{oct(st.st_mode & 0o7777)} {path.relative_to(root)}")
    return found


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_state_and_logs_are_not_world_writable(project: Project, umask: int) -> None:
    # Even under a careless umask 000, no other local user may rewrite the state or the logs.
    command = f"umask {umask:03o} && exec {sys.executable} -m devstack up --detach"
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=project.root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    probes.http_get(project.url + "/")
    assert not _world_writable(project.state_dir)
    project.down()
    assert not _world_writable(project.state_dir)
    assert os.stat(project.state_dir / "state.json").st_mode & 0o022 == 0


def test_project_folder_with_spaces_and_nginx_punctuation(tmp_path: Path) -> None:
    # "My Projects" is a common folder name; ; { } # would end or open an nginx directive.
    from tests.support.stack import kill_leftovers, make_project, processes_under

    proj = make_project(tmp_path / "My Projects; {dev} #1")
    try:
        plant_secrets(proj)
        proj.up_detached()
        assert raw_get(proj.public_port, "/static/css/app.css")[0] == 200
        assert raw_get(proj.public_port, "/static/link-out")[0] == 403
        assert not [a for a in try_traversals(proj) if a.leaked or a.status == 200]
    finally:
        proj.down()
        left = processes_under(proj.root)
        kill_leftovers(proj.root)
    assert not left
