"""The app's own interpreter: found in order (unit), and really used by gunicorn (real stack).

The real tests give the project a `.venv` of its own: a venv made here, seeing the test
interpreter's packages through a .pth file (so no network and no preinstalled state is needed),
plus one package only that venv has. The app imports it: a 200 proves gunicorn ran there.
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from devstack.errors import ConfigError
from devstack.project import apppython
from devstack.project.config import Config, parse
from devstack.stack import probes
from tests.support.stack import Project
from tests.support.wheel import make_wheel


def config_in(root: Path, python: str = "") -> Config:
    data = {"app": {"python": python}} if python else {}
    (root / "app.py").write_text("app = None\n")
    (root / "static").mkdir(exist_ok=True)
    return parse(data, root / "devstack.toml")


def files(*paths: Path) -> object:
    present = {str(p) for p in paths}
    return lambda path: str(path) in present


OWN = "/opt/tool/bin/python"


@pytest.mark.unit
def test_order_app_python_first(tmp_path: Path) -> None:
    config = config_in(tmp_path, "env/bin/python")
    chosen = tmp_path / "env" / "bin" / "python"
    found = apppython.locate(
        config,
        {"VIRTUAL_ENV": "/v"},
        OWN,
        files(chosen, Path("/v/bin/python")),  # type: ignore[arg-type]
    )
    assert found == (str(chosen), "app.python in devstack.toml")


@pytest.mark.unit
def test_app_python_missing_is_a_config_error(tmp_path: Path) -> None:
    config = config_in(tmp_path, ".venv/bin/python")
    with pytest.raises(ConfigError) as err:
        apppython.locate(config, {}, OWN, files())  # type: ignore[arg-type]
    assert "app.python" in str(err.value) and ".venv/bin/python" in str(err.value)


@pytest.mark.unit
def test_order_virtual_env_then_dot_venv_then_venv_then_own(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    dot, plain = tmp_path / ".venv" / "bin" / "python", tmp_path / "venv" / "bin" / "python"
    active = Path("/active/bin/python")
    env = {"VIRTUAL_ENV": "/active"}
    assert apppython.locate(config, env, OWN, files(active, dot, plain))[0] == str(active)  # type: ignore[arg-type]
    assert apppython.locate(config, {}, OWN, files(dot, plain)) == (str(dot), ".venv/ in the project")  # type: ignore[arg-type]
    assert apppython.locate(config, {}, OWN, files(plain)) == (str(plain), "venv/ in the project")  # type: ignore[arg-type]
    # A VIRTUAL_ENV that is gone is skipped, not trusted.
    assert apppython.locate(config, env, OWN, files(plain))[0] == str(plain)  # type: ignore[arg-type]
    assert apppython.locate(config, {}, OWN, files())[0] == OWN  # type: ignore[arg-type]


@pytest.mark.unit
def test_uv_project_environment(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    elsewhere = Path("/envs/app/bin/python")
    found = apppython.locate(config, {"UV_PROJECT_ENVIRONMENT": "/envs/app"}, OWN, files(elsewhere))  # type: ignore[arg-type]
    assert found[0] == str(elsewhere)


@pytest.mark.unit
def test_install_hint_names_the_interpreter() -> None:
    app = apppython.AppPython("/p/.venv/bin/python", "x", "3.12.0", None, frozenset())
    assert app.install_hint("gunicorn>=23", "simple-websocket") == (
        "/p/.venv/bin/python -m pip install 'gunicorn>=23' simple-websocket"
    )


def make_app_venv(root: Path, with_stack: bool = True) -> Path:
    """root/.venv: a real venv; with_stack: it sees this interpreter's packages (.pth) and has
    `greeting`, which this interpreter does not have."""
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if with_stack:
        ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
        (purelib / "devstack-test-stack.pth").write_text("\n".join(sorted(ours)) + "\n")
        with zipfile.ZipFile(make_wheel(root.parent / "wheels")) as wheel:
            wheel.extractall(purelib)  # a pure wheel installs by unpacking
    return venv / "bin" / "python"


def test_gunicorn_runs_in_the_projects_venv(project: Project) -> None:
    python = make_app_venv(project.root)
    with open(project.root / "app.py", "a", encoding="utf-8") as app:
        app.write(
            '\n\n@app.route("/greeting")\ndef greeting_route() -> str:\n    import greeting\n\n'
            "    return greeting.hello()\n"
        )
    result = project.up_detached()
    page = probes.http_get(project.url + "/greeting")
    assert page.status == 200 and page.body == b"hello from an app requirement", page.body[:300]
    status = project.cli("status")
    assert f"app python: {python} (.venv/ in the project)" in status.stdout, status.stdout
    assert project.state()["extra"]["python"]["path"] == str(python), result.stderr


def test_venv_without_gunicorn_is_one_line_naming_it(project: Project) -> None:
    python = make_app_venv(project.root, with_stack=False)
    result = project.cli("up", "--detach")
    assert result.returncode == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert f"gunicorn is not installed in the app's python {python}" in lines[0]
    assert f"{python} -m pip install 'gunicorn>=23' simple-websocket" in lines[0]
    assert "Traceback" not in result.stderr
