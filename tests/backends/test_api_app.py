"""An API-only app, with no page at / and no Socket.IO: the stack is ready once the app answers."""

from __future__ import annotations

import pytest

from devstack.stack import probes
from tests.support.stack import Project

pytestmark = pytest.mark.needs_nginx

API = """\
from flask import Flask

app = Flask(__name__)


@app.route("/api/items")
def items() -> dict[str, list[int]]:
    return {"items": [1, 2, 3]}
"""


def test_api_app_without_index_is_ready(project: Project) -> None:
    (project.root / "app.py").write_text(API, encoding="utf-8")
    result = project.up_detached()
    assert "ready" in result.stderr, result.stderr
    assert project.state()["status"] == "ready"
    assert probes.http_get(project.url + "/").status == 404  # the app's own answer
    assert probes.http_get(project.url + "/api/items").body.startswith(b'{"items"')
    assert project.cli("status").stdout.startswith("running")
