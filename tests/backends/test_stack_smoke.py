from __future__ import annotations

import hashlib

import pytest

from devstack.stack import probes
from tests.support.stack import Project

pytestmark = pytest.mark.needs_nginx


def test_detached_stack_is_ready_and_serves_static(stack: Project) -> None:
    resp = probes.http_get(stack.url + "/")
    assert resp.status == 200
    assert b"Hello from devstack" in resp.body
    css = (stack.root / "static/css/app.css").read_bytes()
    served = probes.http_get(stack.url + "/static/css/app.css")
    assert hashlib.sha256(served.body).digest() == hashlib.sha256(css).digest()
    status = stack.cli("status", "--json")
    assert status.returncode == 0, status.stdout
    assert '"running": true' in status.stdout
