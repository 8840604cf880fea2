"""The wheelhouse's decisions, without a VM: platform tags, requirements, the version gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.project.config import parse
from devstack.vm import wheelhouse
from devstack.vm.wheelhouse import GuestPython

pytestmark = pytest.mark.unit


def config_at(root: Path) -> object:
    (root / "app.py").write_text("app = None\n")
    (root / "static").mkdir(exist_ok=True)
    return parse({}, root / "devstack.toml")


def test_platform_tags_newest_glibc_first() -> None:
    tags = GuestPython((3, 11), "x86_64", "2.36").platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and len(tags) == len(set(tags))
    assert GuestPython((3, 12), "aarch64", "").platforms() == [
        "manylinux2014_aarch64",
        "manylinux_2_17_aarch64",
    ]
    assert GuestPython((3, 10), "x86_64", "2.35").tag == "cp310"


def test_old_guest_python_is_one_clear_line() -> None:
    with pytest.raises(DevstackError) as err:
        wheelhouse.check_version(GuestPython((3, 8), "x86_64", "2.31"))
    assert "3.8" in str(err.value) and "3.10 or newer" in str(err.value)
    wheelhouse.check_version(GuestPython((3, 10), "x86_64", "2.35"))  # Ubuntu 22.04: fine


def test_requirements_txt_first_then_pyproject(tmp_path: Path) -> None:
    config = config_at(tmp_path)
    pyproject = '[project]\nname = "x"\ndependencies = ["flask>=3", "humanize"]\n'
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert wheelhouse.requirements(config) == ["flask>=3", "humanize"]  # type: ignore[arg-type]
    (tmp_path / "requirements.txt").write_text("# pinned\n--find-links wheels\n\ngreeting==1.0\n")
    assert wheelhouse.requirements(config) == ["--find-links wheels", "greeting==1.0"]  # type: ignore[arg-type]


def test_broken_pyproject_means_no_requirements(tmp_path: Path) -> None:
    config = config_at(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert wheelhouse.requirements(config) == []  # type: ignore[arg-type]


def test_stack_requirements_come_from_the_installed_metadata() -> None:
    stack = wheelhouse.stack_requirements()
    names = {s.split(">")[0].split("=")[0].split("[")[0] for s in stack}
    assert {"gunicorn", "flask", "flask-socketio", "simple-websocket", "typer", "python-dotenv"} <= names
    assert "python-vagrant" not in names and "pytest" not in names  # host-only, test-only


def test_cache_key_changes_with_requirements_and_platform() -> None:
    guest = GuestPython((3, 11), "x86_64", "2.36")
    key = wheelhouse.cache_key(["flask"], guest)
    assert key == wheelhouse.cache_key(["flask"], guest)
    assert key != wheelhouse.cache_key(["flask", "humanize"], guest)
    assert key != wheelhouse.cache_key(["flask"], GuestPython((3, 12), "x86_64", "2.36"))


def test_the_guest_probe_starts_no_python_and_reads_the_venvs_key() -> None:
    assert "python3 -c" not in wheelhouse.PROBE  # a Python start costs ~1 s under emulation
    found, key = wheelhouse.parse_probe("Python 3.11.2\nx86_64\nglibc 2.36\n0123abcd\n")
    assert found == GuestPython((3, 11), "x86_64", "2.36") and key == "0123abcd"
    found, key = wheelhouse.parse_probe("Python 3.12.0rc1\naarch64\n\n\n")  # musl: no glibc
    assert found == GuestPython((3, 12), "aarch64", "") and key == ""
    with pytest.raises(DevstackError, match=r"no working python3 \(sh: 1: python3: not found\)"):
        wheelhouse.parse_probe("sh: 1: python3: not found\nx86_64\nglibc 2.36\n\n")
    with pytest.raises(DevstackError, match=r"3\.10 or newer"):
        wheelhouse.parse_probe("Python 3.9.2\nx86_64\nglibc 2.31\n\n")
