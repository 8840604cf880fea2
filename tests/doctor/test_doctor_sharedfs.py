"""Shared-folder faults on a real FUSE filesystem (bindfs stands in for vboxsf/9p/sshfs):
sendfile on, and gunicorn's inotify reloader, both blind or wrong on such a mount."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.system import fsinfo
from tests.support.doctor import doctor, finding, gunicorn, nginx, render
from tests.support.require import have, needs, require
from tests.support.stack import EXAMPLE, free_ports

pytestmark = [
    pytest.mark.needs_nginx,
    needs(have("bindfs"), "bindfs is not installed (apt-get install bindfs)"),
]


@pytest.fixture
def shared_app(tmp_path: Path) -> Iterator[Path]:
    """The example app seen through a FUSE mount."""
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    mnt.mkdir()
    mounted = subprocess.run(["bindfs", str(src), str(mnt)], capture_output=True, text=True, timeout=30)
    require(mounted.returncode == 0, f"cannot mount FUSE here (bindfs): {mounted.stderr.strip()}")
    try:
        assert fsinfo.is_shared(fsinfo.fstype(mnt)), fsinfo.fstype(mnt)
        yield mnt
    finally:
        for unmount in (["fusermount", "-u"], ["fusermount3", "-u"], ["umount"]):
            if (
                shutil.which(unmount[0])
                and subprocess.run([*unmount, str(mnt)], capture_output=True, timeout=30).returncode == 0
            ):
                break


@pytest.mark.parametrize("sendfile,status", [("on", "error"), ("off", "ok")])
def test_sendfile_on_a_shared_folder(shared_app: Path, tmp_path: Path, sendfile: str, status: str) -> None:
    app_port, port = free_ports(2)
    static = shared_app / "static"
    text = render(
        tmp_path, port, app_port, static, http_extra=f"absolute_redirect off;\n    sendfile {sendfile};"
    )
    with nginx(text, tmp_path / "ngx", port) as conf:
        _, report = doctor(
            "nginx.sendfile-shared-fs",
            "--url",
            f"http://127.0.0.1:{port}",
            "--nginx-conf",
            str(conf),
            "--static-dir",
            str(static),
        )
    check = finding(report, "nginx.sendfile-shared-fs")
    assert check["status"] == status, check
    assert any(e["text"] == f"sendfile {sendfile};" for e in check["evidence"])


@needs(
    importlib.util.find_spec("inotify") is not None,
    "gunicorn's inotify reload engine needs the inotify package (in the test extras)",
)
@pytest.mark.parametrize("engine,status", [("inotify", "error"), ("poll", "ok")])
def test_gunicorn_inotify_reload_on_a_shared_folder(
    shared_app: Path, tmp_path: Path, engine: str, status: str
) -> None:
    app_port, port = free_ports(2)
    with gunicorn(
        shared_app,
        app_port,
        "-k",
        "gthread",
        "--reload",
        "--reload-engine",
        engine,
        log=tmp_path / "gunicorn.log",
    ):
        _, report = doctor(
            "gunicorn.reload-shared-fs",
            "--url",
            f"http://127.0.0.1:{port}",
            "--app-url",
            f"http://127.0.0.1:{app_port}",
        )
    check = finding(report, "gunicorn.reload-shared-fs")
    assert check["status"] == status, check
