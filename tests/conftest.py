from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import psutil
import pytest

from tests.support.require import check_marks, have, needs
from tests.support.stack import Project, kill_leftovers, make_project, processes_under


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not have("nginx", Path("/usr/sbin/nginx"), Path("/usr/local/sbin/nginx")):
        missing = needs(False, "nginx is not installed (apt-get install nginx-light)")
        for item in items:
            if "needs_nginx" in item.keywords:
                item.add_marker(missing)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A missing prerequisite (tests/support/require.py): skip locally, fail under CI=true."""
    check_marks(item)


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


class _StartsAProcess(Exception):
    pass


@contextlib.contextmanager
def _no_process_nor_network(nodeid: str) -> Iterator[None]:
    """The unit marker's promise, kept: a unit test that starts a process (subprocess, fork,
    posix_spawn) or connects beyond this machine's loopback fails at once, saying which. A
    socket on 127.0.0.1 inside the test's own process (a held port) is allowed. (The process
    scan below is for the other tiers: it costs more than most unit tests.)"""

    def refuse(what: str) -> NoReturn:
        raise _StartsAProcess(f"{nodeid} is marked unit but {what}: drop the marker or use a seam")

    def no_spawn(*args: object, **kwargs: object) -> NoReturn:
        refuse("starts a process")

    def no_fork() -> NoReturn:
        refuse("forks")

    original = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            refuse(f"connects to {address[0]}")
        original(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", no_spawn)
        patch.setattr(os, "fork", no_fork)
        patch.setattr(os, "posix_spawn", no_spawn)
        patch.setattr(os, "posix_spawnp", no_spawn)
        patch.setattr(socket.socket, "connect", connect)
        yield


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _processes_in(base: str) -> dict[int, psutil.Process]:
    """Live processes whose command line or working folder is under base (pytest's temp root)."""
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        try:
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if base in " ".join(proc.info["cmdline"] or []) or (proc.info["cwd"] or "").startswith(base):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    return found


def _child_of(proc: psutil.Process, owners: set[int]) -> bool:
    """A process forked by one that was already running before the test (a module-scoped
    fixture's gunicorn forking its worker just after it listens) belongs to that owner."""
    try:
        return any(parent.pid in owners for parent in proc.parents())
    except psutil.Error:
        return False


@pytest.fixture(autouse=True)
def _no_process_left_behind(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Fails any test that leaves a process of its own behind (started under pytest's temp
    folder during the test and still alive after its fixtures tore down). The VM tier keeps one
    stack per module on purpose, so it is exempt."""
    if request.node.get_closest_marker("vm"):
        yield
        return
    if request.node.get_closest_marker("unit"):
        with _no_process_nor_network(request.node.nodeid):
            yield
        return
    base = str(tmp_path_factory.getbasetemp())
    before = set(_processes_in(base))
    yield
    left = {
        pid: p for pid, p in _processes_in(base).items() if pid not in before and not _child_of(p, before)
    }
    if left:  # one still exiting (its stop was sent by the teardown) is not left behind
        _, still = psutil.wait_procs(list(left.values()), timeout=3)
        left = {p.pid: p for p in still}
    if not left:
        return
    shown = []
    for proc in left.values():
        try:
            shown.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()  # ours: started under this test's temp folder, after the test began
        except psutil.Error:
            continue
    psutil.wait_procs(list(left.values()), timeout=5)
    pytest.fail(f"processes left behind by {request.node.nodeid}: {shown}", pytrace=False)
