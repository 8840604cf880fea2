"""Bad input: one clear line naming the file, the key and the fix; exit != 0; no traceback."""

from __future__ import annotations

import socket

import pytest

from tests.stackutil import Project, cli_env


def assert_one_line_error(result: object, *needles: str) -> None:
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_nginx_not_installed(project: Project) -> None:
    result = project.cli("up", "--detach", env=cli_env(DEVSTACK_NGINX="/nonexistent/nginx"))
    assert_one_line_error(result, "nginx is not installed", "apt-get install")


def test_malformed_toml(project: Project) -> None:
    project.config_path.write_text("[app\nwsgi = 'app:app'\n")
    assert_one_line_error(project.cli("up", "--detach"), "devstack.toml", "not valid TOML")


def test_unknown_key(project: Project) -> None:
    project.write_config(app='wokrer = "gevent"')
    assert_one_line_error(
        project.cli("up", "--detach"), "devstack.toml", "app.wokrer", "unknown key", "worker"
    )


def test_wrong_type(project: Project) -> None:
    project.write_config(app='threads = "many"')
    assert_one_line_error(project.cli("up", "--detach"), "app.threads", "expected an integer")


def test_same_port_twice(project: Project) -> None:
    project.app_port = project.public_port
    project.write_config()
    assert_one_line_error(project.cli("up", "--detach"), "server.app_port", "different ports")


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


def test_missing_static_dir(project: Project) -> None:
    project.write_config(static='dir = "assets"')
    assert_one_line_error(project.cli("up", "--detach"), "static.dir", "does not exist")


def test_app_module_missing(project: Project) -> None:
    project.config_path.write_text(project.config_path.read_text().replace("app:app", "nosuch:app"))
    assert_one_line_error(project.cli("up", "--detach"), "app.wsgi", "nosuch")


@pytest.mark.needs_nginx
def test_app_that_raises_at_import_with_timeout(project: Project) -> None:
    # --timeout: the scripts' contract, not ready in time is exit 4 with the app's error.
    app_py = project.root / "app.py"
    app_py.write_text(app_py.read_text() + "\nimport flask_nonexistent_extension\n")
    result = project.cli("up", "--detach", "--timeout", "3")
    assert result.returncode == 4
    assert_one_line_error(result, "did not become ready", "flask_nonexistent_extension")


def test_no_config_anywhere(tmp_path: object) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "devstack", "status"],
        cwd=str(tmp_path),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert_one_line_error(result, "devstack.toml", "devstack init")
