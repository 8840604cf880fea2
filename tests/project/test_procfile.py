"""Procfile and .env parsing, and how the plan turns them into processes (pure logic)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devstack.errors import ConfigError
from devstack.project import config as config_mod
from devstack.project import envfiles, procfile
from devstack.stack import facts, plan
from tests.support.facts import make_facts
from tests.support.stack import make_project


@pytest.mark.unit
def test_procfile_lines() -> None:
    text = "# tools\ncss: npm run watch:css\n\nworker:python -m worker --queue a:b  \n"
    assert procfile.parse_procfile(text) == {
        "css": "npm run watch:css",
        "worker": "python -m worker --queue a:b",
    }
    with pytest.raises(ConfigError, match="defined twice"):
        procfile.parse_procfile("a: x\na: y\n")
    with pytest.raises(ConfigError, match="line 1"):
        procfile.parse_procfile("no colon here\n")


@pytest.mark.unit
def test_dotenv_values(tmp_path: Path) -> None:
    # The cases of the former hand-written parser, now read by python-dotenv (project/envfiles.py).
    text = "\n".join(
        [
            "# comment",
            "PLAIN=value",
            "export EXPORTED=yes",
            "SPACED = two words # note",
            "SINGLE='lit $HOME \\n'",
            'DOUBLE="a\\nb \\"q\\""',
            "EMPTY=",
            "URL=http://x/#frag",
        ]
    )
    (tmp_path / ".env").write_text(text + "\n")
    assert envfiles.load(tmp_path, environ={}) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "two words",
        "SINGLE": "lit $HOME \\n",
        "DOUBLE": 'a\nb "q"',
        "EMPTY": "",
        "URL": "http://x/#frag",
    }


@pytest.mark.unit
def test_plan_adds_procfile_and_toml_processes_with_dotenv(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write_config(extra='[processes]\ncss = "echo toml"\n')
    (project.root / "Procfile").write_text(
        "web: gunicorn app:app\ncss: echo procfile\njobs: python jobs.py\n"
    )
    (project.root / ".env").write_text("SECRET=s3cret\nDEVSTACK=overridden?\n")
    warnings: list[str] = []
    config = config_mod.load(project.config_path)
    host = make_facts(
        config, procfile=procfile.read_procfile(project.root), dotenv=envfiles.load(project.root)
    )
    specs = plan.extra_specs(config, host, warnings)
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {"css", "jobs"}
    assert by_name["css"].argv == ["/bin/sh", "-c", "exec echo toml"]
    assert by_name["jobs"].env["SECRET"] == "s3cret"
    assert by_name["jobs"].env["DEVSTACK"] == "1"  # devstack's own variables win
    assert any("'web' skipped" in w for w in warnings)
    assert any("'css' is in the Procfile and in devstack.toml" in w for w in warnings)
    assert not any("s3cret" in w for w in warnings)


@pytest.mark.unit
def test_children_are_asked_for_color_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plan.color_env(True)["FORCE_COLOR"] == "1"
    assert plan.color_env(False) == {"NO_COLOR": "1"}
    monkeypatch.setenv("NO_COLOR", "1")
    project = make_project(tmp_path)
    project.write_config(extra='[processes]\ncss = "echo css"\n')
    config = config_mod.load(project.config_path)
    host = facts.gather(config, sys.executable, {**os.environ, "DEVSTACK_NGINX": sys.executable})
    assert host.no_color  # gathered once; build() then asks every child for no color
    children = [s for s in plan.build(config, host, colors=True).processes if s.env]
    assert [s.name for s in children] == ["gunicorn", "css"]
    assert all(s.env["NO_COLOR"] == "1" and "FORCE_COLOR" not in s.env for s in children)
