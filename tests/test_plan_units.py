"""plan.build over a real project tree, starting nothing: what the config and the files decide."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devstack import config as config_mod
from devstack import plan
from devstack.errors import ConfigError
from tests.stackutil import Project, make_project

pytestmark = pytest.mark.unit


def build(project: Project) -> plan.Plan:
    return plan.build(config_mod.load(project.config_path), colors=False)


def gunicorn(the_plan: plan.Plan) -> plan.ProcessSpec:
    return next(s for s in the_plan.processes if s.name == "gunicorn")


def test_no_static_folder_proxies_everything_and_says_so(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    shutil.rmtree(project.root / "static")
    the_plan = build(project)
    assert "alias" not in the_plan.nginx_conf and "no static folder" in the_plan.nginx_conf
    assert [w for w in the_plan.warnings if w.startswith("no static folder")]


def test_a_static_dir_written_in_the_file_must_exist(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(static='dir = "assets"')
    with pytest.raises(ConfigError, match=r"static\.dir"):
        config_mod.load(project.config_path)


def test_dotenv_and_flaskenv_reach_gunicorn_under_devstacks_own(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    (project.root / ".flaskenv").write_text("FLASK_APP=app\nFROM_FLASKENV=1\nBOTH=flaskenv\n")
    (project.root / ".env").write_text("BOTH=env\nDEVSTACK=from-dotenv\nSECRET='s p a c e'\n")
    env = gunicorn(build(project)).env
    assert env["FROM_FLASKENV"] == "1" and env["BOTH"] == "env" and env["SECRET"] == "s p a c e"
    assert env["DEVSTACK"] == "1"  # devstack's own variables are set over .env


def test_control_socket_is_short_for_a_deep_project(tmp_path: Path) -> None:
    project = make_project(tmp_path.joinpath(*["deep-folder-name-here"] * 5))
    argv = gunicorn(build(project)).argv
    control = argv[argv.index("--control-socket") + 1]
    assert len(control.encode()) <= 100 and control.endswith("gunicorn.ctl")


def test_a_dollar_in_the_path_reaches_nginx_through_a_link(tmp_path: Path) -> None:
    project = make_project(tmp_path / "a $HOME b")
    conf = build(project).nginx_conf
    alias = next(line for line in conf.splitlines() if line.strip().startswith("alias "))
    assert "$" not in alias and "static-link" in alias


def test_gunicorn_runs_under_the_found_interpreter(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    the_plan = build(project)
    assert the_plan.app_python is not None
    assert gunicorn(the_plan).argv[0] == the_plan.app_python.path


def test_app_python_pointing_nowhere_is_a_config_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(app='python = "env/bin/python"')
    with pytest.raises(ConfigError, match=r"app\.python"):
        build(project)


def test_factory_wsgi_is_accepted_as_gunicorn_writes_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    text = project.config_path.read_text().replace('wsgi = "app:app"', "wsgi = \"app:make_app('dev')\"")
    project.config_path.write_text(text)
    assert gunicorn(build(project)).argv[-1] == "app:make_app('dev')"


def test_a_derived_state_root_moves_every_state_path(tmp_path: Path) -> None:
    # The VM guest derives its config by fields (dataclasses.replace), not by subclassing Config.
    import dataclasses

    config = config_mod.load(make_project(tmp_path).config_path)
    guest = dataclasses.replace(config, state_root=tmp_path / "guest-state")
    assert guest.state_dir == tmp_path / "guest-state" and config.state_dir == config.root / ".devstack"
    the_plan = plan.build(guest, colors=False)
    assert f"{(tmp_path / 'guest-state').resolve()}/nginx.pid" in the_plan.nginx_conf
