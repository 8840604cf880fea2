"""Where the app's interpreter is likely to be before the config is read (project/pythonprobe.py):
the gated head start spawns gunicorn with that guess."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devstack.project import pythonprobe

PY = sys.executable


def files(*paths: Path) -> object:
    present = {str(p) for p in paths}
    return lambda path: path in present


@pytest.mark.unit
def test_guess_follows_locates_order_from_the_config_folder(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    sub = root / "src" / "pkg"
    toml, dot, plain = root / "devstack.toml", root / ".venv/bin/python", root / "venv/bin/python"
    active, uv = tmp_path / "active/bin/python", tmp_path / "uvenv/bin/python"

    def guess(environ: dict[str, str], *present: Path, config: str | None = None) -> str | None:
        return pythonprobe.guess(config, environ, str(sub), files(*present))  # type: ignore[arg-type]

    # From a subfolder: up to the folder holding devstack.toml, as config.find_config does.
    assert guess({}, toml, dot, plain) == str(dot)
    assert guess({}, toml, plain) == str(plain)
    assert guess({"VIRTUAL_ENV": str(tmp_path / "active")}, toml, dot, active) == str(active)
    assert guess({"UV_PROJECT_ENVIRONMENT": str(tmp_path / "uvenv")}, toml, dot, uv) == str(uv)
    assert guess({}, toml) is None  # devstack's own interpreter: nothing to ask early
    assert guess({}, dot, config=str(root / "devstack.toml")) == str(dot)  # --config names the root


@pytest.mark.unit
def test_the_project_root_is_sure_only_beside_a_devstack_toml(tmp_path: Path) -> None:
    """A gated gunicorn (headstart.py) makes .devstack/ there: never beside a pyproject.toml
    that may hold no [tool.devstack]."""
    root = tmp_path / "proj"
    sub = str(root / "src")

    def where(*present: Path, config: str | None = None) -> tuple[str, bool]:
        return pythonprobe.project_root(config, sub, files(*present))  # type: ignore[arg-type]

    assert where(root / "devstack.toml") == (str(root), True)
    assert where(root / "pyproject.toml") == (str(root), False)
    assert where(root / "pyproject.toml", root / "src" / "devstack.toml") == (sub, True)  # the nearest
    assert where() == (sub, False)  # none anywhere: `up` says so
    assert where(config=str(root / "other.toml")) == (str(root), True)  # --config names the file
    assert where(root / "devstack.toml", config=str(root)) == (str(root), True)  # ... or a folder
    assert where(config=sub) == (sub, False)
