"""ports.port_conflict: the one "port N is taken" line, over a real socket this test holds."""

from __future__ import annotations

import os
import socket

import pytest

from devstack.system import ports
from tests.support.stack import free_port

pytestmark = pytest.mark.unit


def test_a_free_port_is_no_conflict() -> None:
    assert ports.port_conflict("127.0.0.1", free_port(), "server.listen", "devstack.toml") is None


def test_a_held_port_names_its_holder_the_key_and_the_fix() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        line = ports.port_conflict("127.0.0.1", port, "server.app_port", "pyproject.toml")
    assert line is not None and "\n" not in line
    assert line.startswith(f"port {port} (server.app_port in pyproject.toml) is taken by ")
    assert f"pid {os.getpid()}" in line  # this very process holds it
    assert line.endswith("— stop it, or set server.app_port to a free port")


def test_the_wording_for_an_unseen_holder_and_another_label() -> None:
    line = ports.port_taken(8080, "vm.host_port", "devstack.toml", "another process", "host port")
    assert line == (
        "host port 8080 (vm.host_port in devstack.toml) is taken by another process "
        "— stop it, or set vm.host_port to a free port"
    )
