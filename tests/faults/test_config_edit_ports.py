"""devstack.toml moved to a port somebody else holds while the stack runs: nothing changes."""

from __future__ import annotations

import os
import socket

import pytest

from tests.support.faults import notes, recorded, serving
from tests.support.stack import Project, free_port, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def test_a_taken_port_keeps_the_stack_as_it_was(stack: Project) -> None:
    nginx, gunicorn = recorded(stack, "nginx"), recorded(stack, "gunicorn")
    old_port, taken = stack.public_port, free_port()
    conf = (stack.state_dir / "nginx.conf").read_text()
    with socket.create_server(("127.0.0.1", taken)):
        stack.public_port = taken
        stack.write_config()

        def said() -> list[str]:
            return [line for line in notes(stack, "devstack") if "changed but port" in line]

        assert wait_for(said, timeout=20)
    line = said()[0]
    assert f"port {taken} (server.listen in devstack.toml) is taken by " in line, line
    assert f"pid {os.getpid()}" in line and "set server.listen to a free port" in line, line
    assert line.endswith("the stack keeps running with the previous settings"), line
    stack.public_port = old_port
    assert serving(stack) and (stack.state_dir / "nginx.conf").read_text() == conf
    assert (recorded(stack, "nginx"), recorded(stack, "gunicorn")) == (nginx, gunicorn)
    assert stack.state()["ports"]["public"] == old_port
