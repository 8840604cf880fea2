from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stackutil import Project, kill_leftovers, make_project, processes_under


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("nginx") is None and not any(
        p.is_file() for p in (Path("/usr/sbin/nginx"), Path("/usr/local/sbin/nginx"))
    ):
        skip = pytest.mark.skip(reason="nginx is not installed (apt-get install nginx-light)")
        for item in items:
            if "needs_nginx" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A private copy of examples/chat on free ports; any process left behind fails the test."""
    proj = make_project(tmp_path)
    yield proj
    proj.down()
    left = processes_under(proj.root)
    killed = kill_leftovers(proj.root)
    assert not left, f"processes left behind: {killed}"


@pytest.fixture
def stack(project: Project) -> Iterator[Project]:
    """The example stack running detached (devstack up --detach), stopped afterwards."""
    project.up_detached()
    yield project
