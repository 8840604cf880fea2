"""project/config.py's error lines to the letter, find_config's search, host names (the
mutants `make mutation` found surviving in config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.errors import ConfigError
from devstack.project import config

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "static").mkdir()
    (tmp_path / "app.py").write_text("app = None\n")
    return tmp_path


def error(root: Path, text: str) -> str:
    (root / "devstack.toml").write_text(text + "\n")
    with pytest.raises(ConfigError) as raised:
        config.load(root / "devstack.toml")
    return str(raised.value).replace(str(root / "devstack.toml"), "devstack.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[app]\nwsgi = 3",
            'app.wsgi: expected a string, got an integer 3 — write a string, e.g. app.wsgi = "app:app"',
        ),
        (
            '[app]\nreload = "yes"',
            "app.reload: expected true or false, got a string 'yes' — "
            "write true or false, e.g. app.reload = true",
        ),
        (
            '[app]\nreload_extra = "x"',
            "app.reload_extra: expected a list, got a string 'x' — write a list, e.g. app.reload_extra = []",
        ),
        (
            '[server]\napp_port = "x"',
            "server.app_port: expected an integer, got a string 'x' — "
            "write an integer, e.g. server.app_port = 5001",
        ),
        ("[app]\nenv = 3", "app.env: expected a table, got an integer 3 — write a table, e.g. app.env = {}"),
        (
            "[server]\napp_port = 1.5",
            "server.app_port: expected an integer, got a number 1.5 — "
            "write an integer, e.g. server.app_port = 5001",
        ),
        (
            "[server]\napp_port = true",
            "server.app_port: expected an integer, got true or false True — write an integer, "
            "e.g. server.app_port = 5001",
        ),
        (
            "[app]\nwsgi = 1979-05-27",
            "app.wsgi: expected a string, got date datetime.date(1979, 5, 27) — write a string, "
            'e.g. app.wsgi = "app:app"',
        ),
        (
            '[app]\nwsgi = ["a"]',
            "app.wsgi: expected a string, got a list ['a'] — write a string, e.g. app.wsgi = \"app:app\"",
        ),
        ("app = 3", "[app]: must be a table — write it as [app]"),
        ("[server]\napp_port = 0", "server.app_port: 0 is out of range — use a number from 1 to 65535"),
        (
            "[server]\napp_port = 65536",
            "server.app_port: 65536 is out of range — use a number from 1 to 65535",
        ),
    ],
)
def test_a_wrong_value_is_one_line_with_the_kind_and_an_example(root: Path, text: str, message: str) -> None:
    assert error(root, text) == f"devstack.toml: {message}"


def test_a_long_value_is_cut_short_in_the_line(root: Path) -> None:
    long = ["x" * 57]  # repr: 61 characters
    shown = repr(long)
    line = error(root, f"[app]\nwsgi = {long}")
    assert f"got a list {shown[:55]} …{shown[-3:]} — " in line
    assert shown not in line
    exactly = ["x" * 56]  # repr: 60 characters, shown whole
    assert len(repr(exactly)) == 60
    assert f"got a list {exactly!r} — " in error(root, f"[app]\nwsgi = {exactly}")


def test_find_config_searches_upwards_for_either_file(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "devstack.toml").write_text("")
    assert config.find_config(deep) == tmp_path / "devstack.toml"
    (tmp_path / "a" / "pyproject.toml").write_text("[tool.devstack]\n")
    assert config.find_config(deep) == tmp_path / "a" / "pyproject.toml"
    (deep / "devstack.toml").write_text("")
    assert config.find_config(deep) == deep / "devstack.toml"  # the nearest wins


@pytest.mark.parametrize(
    ("text", "theirs"),
    [
        ("[tool.black]\n", False),
        ("tool = 3\n", False),
        ("not toml [\n", False),
        ("[project]\n", False),
        ("[tool.devstack]\n", True),
        ("[tool]\ndevstack = 1\n", True),  # a devstack key of any kind: load() then says what is wrong
    ],
)
def test_a_pyproject_counts_only_with_a_devstack_table(tmp_path: Path, text: str, theirs: bool) -> None:
    (tmp_path / "devstack.toml").write_text("")
    inner = tmp_path / "x" / "y"
    inner.mkdir(parents=True)
    (tmp_path / "x" / "pyproject.toml").write_text(text)
    expected = tmp_path / "x" / "pyproject.toml" if theirs else tmp_path / "devstack.toml"
    assert config.find_config(inner) == expected


def test_a_pyproject_that_is_not_utf8_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.devstack]\n\xff\n")
    (tmp_path / "devstack.toml").write_text("")
    inner = tmp_path / "in"
    inner.mkdir()
    (inner / "pyproject.toml").write_bytes(b"\xff[tool.devstack]\n")
    assert config.find_config(inner) == tmp_path / "devstack.toml"


def test_no_config_anywhere_is_one_line_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "CONFIG_NAME", "devstack-test-absent.toml")
    with pytest.raises(ConfigError) as raised:
        config.find_config(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path.resolve() / 'devstack-test-absent.toml'}: no devstack.toml here or in any parent folder "
        "— run `devstack init` in your project, or pass --config PATH"
    )


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("localhost", True),
        ("dev.example.org", True),
        ("*.example.org", True),
        ("a-b.c", True),
        ("[::1]", True),
        ("[127.0.0.1]", True),
        ("-a.org", False),
        ("a-.org", False),
        ("a..org", False),
        ("a b", False),
        ("*", False),
        ("a" * 63, True),
        ("a" * 64, False),
        (".".join(["a" * 63] * 4)[:253], True),
        (".".join(["a" * 63] * 4)[:253] + "a", False),
        ("", False),
    ],
)
def test_host_names(name: str, ok: bool) -> None:
    assert config.is_host_name(name) is ok
