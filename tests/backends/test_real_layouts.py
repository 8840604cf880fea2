"""Real projects' habits, run unedited (issue #25, items 3-5): blueprints with their own static
and template folders, static at the site root, extra processes from the app's venv.

Each test copies a project, runs the real `devstack init` (only the two port lines of what it
wrote are moved to free ports), then `up --detach` with real nginx, gunicorn and watchers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import REPO, Project, init_project, kill_leftovers, processes_under, wait_for
from tests.support.wheel import make_script_wheel

pytestmark = pytest.mark.needs_nginx

BLUEPRINTS = REPO / "examples" / "blueprints"


def _init(root: Path) -> Project:
    project, said = init_project(root)
    project.init_said = said  # type: ignore[attr-defined]
    return project


@pytest.fixture
def stacks() -> Iterator[list[Project]]:
    """Projects a test started: stopped afterwards, and nothing of them left running."""
    started: list[Project] = []
    yield started
    for project in started:
        project.down()
        left = processes_under(project.root)
        killed = kill_leftovers(project.root)
        assert not left, f"processes left behind: {killed}"


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    from devstack.stack import probes

    resp = probes.http_get(url, timeout=5.0)
    return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.body


def _logs(project: Project) -> str:
    return project.cli("logs").stdout


def test_blueprint_example_runs_unedited(tmp_path: Path, stacks: list[Project]) -> None:
    root = tmp_path / "blueprints"
    shutil.copytree(
        BLUEPRINTS, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__", "devstack.toml")
    )
    project = _init(root)
    said = project.init_said  # type: ignore[attr-defined]
    assert "blueprint static /admin/assets/ (shop/admin/assets), /chat/static/ (shop/chat/static)" in said
    assert "templates shop/templates/*.html, shop/chat/templates/*.html" in said
    stacks.append(project)
    up = project.up_detached()
    assert "ready" in up.stderr

    status, _, body = _get(project.url + "/")
    assert status == 200 and b"<h1>Shop</h1>" in body
    # Each blueprint's static folder is nginx's (no ETag: the static location turns it off; Flask's
    # send_file would add one), byte-identical to disk, with the same no-store header.
    for url, path in (
        ("/chat/static/chat.css", root / "shop/chat/static/chat.css"),
        ("/admin/assets/admin.js", root / "shop/admin/assets/admin.js"),
    ):
        status, headers, body = _get(project.url + url)
        assert status == 200 and body == path.read_bytes(), url
        assert "etag" not in headers and headers.get("cache-control") == "no-store", (url, headers)

    # A blueprint static edit is proven fresh through nginx by the watcher, byte-identical.
    css = root / "shop/chat/static/chat.css"
    css.write_text(".message { color: rebeccapurple; }\n")
    assert wait_for(lambda: "fresh  chat/static/chat.css" in _logs(project), timeout=15), _logs(project)
    assert _get(project.url + "/chat/static/chat.css")[2] == css.read_bytes()

    # A template edit in the blueprint's templates: the next response shows it, the stack and
    # gunicorn's master unrestarted, no FLASK_DEBUG.
    master = project.state()["processes"]["gunicorn"]["pid"]
    room = root / "shop/chat/templates/chat/room.html"
    room.write_text(room.read_text().replace("<h1>Chat room</h1>", "<h1>Chat room, edited</h1>"))
    assert wait_for(lambda: b"Chat room, edited" in _get(project.url + "/chat/")[2], timeout=15)
    assert project.state()["processes"]["gunicorn"]["pid"] == master
    assert "reloading (room.html)" in _logs(project)

    # doctor's static checks run for every static route, each finding naming its route.
    doctor = project.cli("doctor", "static.ladder", "static.served-by-app")
    assert doctor.returncode == 0, doctor.stdout
    for line in (
        "static.ladder /chat/static/: chat.css: disk, app server, public URL all serve the same sha256",
        "static.served-by-app /admin/assets/: served by nginx",
    ):
        assert line in doctor.stdout, doctor.stdout


ROOT_APP = """\
from flask import Flask

app = Flask(__name__, static_folder=".", static_url_path="")


@app.route("/")
def index() -> str:
    return "<!doctype html><title>root</title><p>from the app</p>"
"""


def test_static_at_the_site_root(tmp_path: Path, stacks: list[Project]) -> None:
    root = tmp_path / "rootstatic"
    root.mkdir()
    (root / "app.py").write_text(ROOT_APP)
    (root / "hello.txt").write_text("hello from disk\n")
    project = _init(root)
    config = project.config_path.read_text()
    assert 'url = "/"' in config and 'dir = "."' in config, config
    stacks.append(project)
    project.up_detached()

    status, _, body = _get(project.url + "/")
    assert status == 200 and b"from the app" in body  # "/" is a folder: the app's
    status, headers, body = _get(project.url + "/hello.txt")
    assert status == 200 and body == b"hello from disk\n" and "etag" not in headers  # nginx's
    assert _get(project.url + "/no-such-file")[0] == 404  # the app's answer
    (root / "hello.txt").write_text("edited on disk\n")
    assert wait_for(lambda: "fresh  hello.txt" in _logs(project), timeout=15), _logs(project)
    assert _get(project.url + "/hello.txt")[2] == b"edited on disk\n"
    # The static folder is the app's folder: its code is still watched and reloaded.
    app_py = root / "app.py"
    app_py.write_text(app_py.read_text().replace("from the app", "from the edited app"))
    assert wait_for(lambda: b"from the edited app" in _get(project.url + "/")[2], timeout=15), _logs(project)


def _app_venv(root: Path) -> Path:
    """A project .venv (no pip of its own: seconds) that sees devstack's own packages (gunicorn,
    Flask) through a .pth file, with a package that provides a console script, installed by pip
    (devstack's) from a local wheel: the script pip writes, with no network."""
    venv = root / ".venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "devstack_test_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = make_script_wheel(root.parent / "wheels")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q"]
    subprocess.run([*pip, "--no-index", "--no-deps", str(wheel)], check=True, timeout=120)
    assert (venv / "bin" / "hello-worker").is_file()
    return venv


def test_extra_processes_run_in_the_apps_venv_and_a_crashing_one_is_named(
    tmp_path: Path, stacks: list[Project]
) -> None:
    root = tmp_path / "procs"
    shutil.copytree(REPO / "examples" / "minimal", root, ignore=shutil.ignore_patterns("__pycache__"))
    venv = _app_venv(root)
    (root / "Procfile").write_text(
        "web: gunicorn chat:app\nworker: hello-worker\ncrashy: no-such-tool --serve\n"
    )
    project = _init(root)
    stacks.append(project)
    up = project.up_detached()

    # The console script from the app's venv was found on PATH, and runs as if activated.
    out = root / "worker.out"
    assert wait_for(out.exists, timeout=15), project.cli("logs").stdout
    prefix, virtual_env = out.read_text().strip().split("|")
    assert Path(prefix) == venv and Path(virtual_env) == venv

    # The crashing one is named: by up --detach (if it crashed before ready), in status, by doctor.
    assert wait_for(
        lambda: project.state().get("extra", {}).get("crashes", {}).get("crashy", {}).get("restarts", 0) >= 2,
        timeout=20,
    ), project.state()
    assert "process 'crashy' exited with code 127" in up.stderr, up.stderr
    status = project.cli("status").stdout
    assert re.search(r"(?m)^crashy\s+\d+\s+\w+\s+\S+( s)?\s+\d+$", status), status
    line = next(ln for ln in status.splitlines() if ln.startswith("crashy: restarted"))
    assert "no-such-tool" in line and "not found" in line, status
    assert re.search(r"(?m)^worker\s+\d+\s+up\s+.*\s0$", status), status
    doctor = project.cli("doctor", "procs.crashing")
    assert doctor.returncode == 1, doctor.stdout
    assert "keeps crashing: crashy" in doctor.stdout and "exit code 127" in doctor.stdout, doctor.stdout
    assert "worker" not in doctor.stdout.split("keeps crashing:")[1].splitlines()[0]
