"""Bad input: one clear line naming the file, the key and the fix; exit != 0; no traceback.

Errors found before anything starts run in-process (tests/support/cli.py, the unit tier); the rest,
and one config error through a real `python -m devstack`, run as subprocesses.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Result, devstack
from tests.support.stack import Project, cli_env, make_project

unit = pytest.mark.unit


def assert_one_line_error(result: subprocess.CompletedProcess[str] | Result, *needles: str) -> None:
    if isinstance(result, Result):
        code, stderr = result.exit, result.err.strip()
    else:
        code, stderr = result.returncode, result.stderr.strip()
    assert code != 0
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_nginx_not_installed(project: Project) -> None:
    result = project.cli("up", "--detach", env=cli_env(DEVSTACK_NGINX="/nonexistent/nginx"))
    assert_one_line_error(result, "nginx is not installed", "apt-get install")


def test_malformed_toml_through_the_real_command(project: Project) -> None:
    project.config_path.write_text("[app\nwsgi = 'app:app'\n")
    assert_one_line_error(project.cli("up", "--detach"), "devstack.toml", "not valid TOML")


@pytest.fixture
def chat(tmp_path: Path) -> Project:
    """The example project, never started (in-process calls stop at the config)."""
    return make_project(tmp_path)


def up_in_process(project: Project) -> Result:
    result = devstack("up", "--detach", cwd=project.root)
    assert not (project.root / ".devstack" / "state.json").exists()  # nothing was started
    return result


@unit
def test_malformed_toml(chat: Project) -> None:
    chat.config_path.write_text("[app\nwsgi = 'app:app'\n")
    assert_one_line_error(up_in_process(chat), "devstack.toml", "not valid TOML")


@unit
def test_unknown_key(chat: Project) -> None:
    chat.write_config(app='wokrer = "gevent"')
    assert_one_line_error(up_in_process(chat), "devstack.toml", "app.wokrer", "unknown key", "worker")


@unit
def test_wrong_type(chat: Project) -> None:
    chat.write_config(app='threads = "many"')
    assert_one_line_error(up_in_process(chat), "app.threads", "expected an integer")


@unit
def test_same_port_twice(chat: Project) -> None:
    chat.app_port = chat.public_port
    chat.write_config()
    assert_one_line_error(up_in_process(chat), "server.app_port", "different ports")


@pytest.mark.needs_nginx
def test_taken_port_names_the_owner(project: Project) -> None:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", project.public_port))
    holder.listen()
    try:
        result = project.cli("up", "--detach")
    finally:
        holder.close()
    assert result.returncode == 3
    assert_one_line_error(result, f"port {project.public_port}", "server.listen", "python")


@unit
def test_missing_static_dir(chat: Project) -> None:
    chat.write_config(static='dir = "assets"')
    assert_one_line_error(up_in_process(chat), "static.dir", "does not exist")


@unit
def test_app_module_missing(chat: Project) -> None:
    chat.config_path.write_text(chat.config_path.read_text().replace("app:app", "nosuch:app"))
    assert_one_line_error(up_in_process(chat), "app.wsgi", "nosuch")


@pytest.mark.needs_nginx
def test_app_that_raises_at_import_with_timeout(project: Project) -> None:
    # --timeout: the scripts' contract, not ready in time is exit 4 with the app's error.
    app_py = project.root / "app.py"
    app_py.write_text(app_py.read_text() + "\nimport flask_nonexistent_extension\n")
    result = project.cli("up", "--detach", "--timeout", "3")
    assert result.returncode == 4
    assert_one_line_error(result, "did not become ready", "flask_nonexistent_extension")


@unit
def test_no_config_anywhere(tmp_path: Path) -> None:
    result = devstack("status", cwd=tmp_path)
    assert_one_line_error(result, "devstack.toml", "devstack init")
    assert result.out == ""


@unit
@pytest.mark.parametrize(
    ("argv", "code", "needles"),
    [
        (["logs", "nosuch"], 2, ["no process named nosuch", "known:", "gunicorn"]),
        (["logs", "--since", "yesterday-ish"], 2, ["--since"]),
        (["doctor", "--fail-level", "fatal"], 2, ["--fail-level 'fatal'", "error or warning"]),
        (["doctor", "no.such.check"], 2, ["unknown check 'no.such.check'"]),
        (["doctor", "--static-dir", "x"], 2, ["pass --url too"]),
        (["doctor", "--config", "missing.toml"], 1, ["missing.toml"]),
    ],
)
def test_bad_values_are_one_line_errors(
    chat: Project, argv: list[str], code: int, needles: list[str]
) -> None:
    result = devstack(*argv, cwd=chat.root)
    assert_one_line_error(result, *needles)
    assert (result.exit, result.out) == (code, "")


@unit
def test_init_never_overwrites(chat: Project) -> None:
    before = chat.config_path.read_text()
    result = devstack("init", ".", cwd=chat.root)
    assert_one_line_error(result, "devstack.toml already exists", "never overwrites")
    assert chat.config_path.read_text() == before
    chat.config_path.unlink()
    wrote = devstack("init", cwd=chat.root)
    assert (wrote.exit, wrote.out) == (0, "") and wrote.err.startswith("wrote devstack.toml: app:app")
    assert chat.config_path.is_file()


@unit
def test_down_with_nothing_running_says_so_on_the_envs_stderr(chat: Project) -> None:
    result = devstack("down", cwd=chat.root)
    assert result.exit == 0
    assert result.err == "devstack: no stack is running here\n" and result.out == ""
