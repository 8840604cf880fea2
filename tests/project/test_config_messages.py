"""project/config.py's error lines to the letter, find_config's search, host names (the
mutants `make mutation` found surviving in config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.errors import ConfigError, DevstackError
from devstack.project import config
from tests.support.configfile import said

pytestmark = pytest.mark.unit


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


FOLDER_FIX = "point it at the folder of your static files (e.g. static), relative to app.dir"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"#" * (1024 * 1024 + 1), "larger than 1024 KiB — a config is a few lines: trim it"),
        (b'[app]\nwsgi = "\xff"\n', "not valid UTF-8 — save the file as UTF-8"),
        (
            "[app\n",
            "not valid TOML (Expected ']' at the end of a table declaration (at line 1, column 5)) "
            "— fix the syntax",
        ),
        ('[app.env]\n"A\\u0000" = "1"\n', "app.env.A\\x00: the key holds a NUL byte — remove it"),
        ('[app]\nwsgi = "a\\u0000"\n', "app.wsgi: the value holds a NUL byte — remove it"),
        (
            "a = " + "[" * 20 + "]" * 20 + "\n",
            "a" + "[0]" * 16 + ": nested deeper than 16 levels — flatten it",
        ),
        ('[app.env]\n"A=B" = "1"\n', "app.env.A=B: not a usable variable name — use letters, digits and _"),
        (
            '[app.env]\nA = "' + "x" * (64 * 1024 - 2) + '"\n',
            "app.env.A: the value is 64 KiB, over the 64 KiB a variable may hold (the kernel refuses the "
            "process start) — put the data in a file and pass its path",
        ),
        (
            '[server]\nlisten = "nope"\n',
            "server.listen: 'nope' is not host:port — write host:port, e.g. listen = \"127.0.0.1:5000\"",
        ),
        (
            '[server]\nlisten = "127.0.0.1:70000"\n',
            "server.listen: port 70000 is out of range — use a port from 1 to 65535",
        ),
        (
            '[app]\ndir = "missing"\n',
            "app.dir: folder ROOT/missing does not exist — point app.dir at the folder holding your app",
        ),
        (
            '[static]\ndir = "missing"\n',
            "static.dir: folder ROOT/missing does not exist — create it, or point static.dir at your "
            "static folder (relative to app.dir)",
        ),
        (
            '[static]\ndir = "."\n',
            "static.dir: ROOT is the project folder: nginx would serve .env and devstack.toml — "
            + FOLDER_FIX,
        ),
        (
            '[[static.extra]]\nurl = "/x/"\ndir = "nope"\n',
            "static.extra[0].dir: folder ROOT/nope does not exist — point it at the blueprint's static "
            "folder (relative to app.dir), or remove the entry",
        ),
        (
            '[app]\nwsgi = "pkg.mod:app"\n',
            "app.wsgi: module 'pkg.mod' not found in ROOT (no mod.py or mod/__init__.py) — set app.wsgi "
            "to module:attr of your Flask app, relative to app.dir",
        ),
        (
            '[static]\ndir = "a\\u0001b"\n',
            "static.dir: 'a\\x01b' holds a control character — rename the folder",
        ),
    ],
)
def test_load_refusals_are_whole_lines(here: Path, text: str | bytes, line: str) -> None:
    assert said(here, text) == f"devstack.toml: {line}"


def test_folder_refusals_name_the_folder(here: Path) -> None:
    above = said(here, '[static]\ndir = ".."\n')
    assert above == (
        f"devstack.toml: static.dir: {here.parent} is above the project: nginx would serve all of it — "
        + FOLDER_FIX
    )
    (here / "static" / ".env").write_text("X=1\n")
    assert said(here, '[static]\ndir = "static"\n') == (
        "devstack.toml: static.dir: ROOT/static holds .env: nginx would serve the project's files — "
        + FOLDER_FIX
    )
    (here / "static" / ".env").unlink()
    (here / "blue$print").mkdir()
    assert said(here, '[[static.extra]]\nurl = "/b/"\ndir = "blue$print"\n') == (
        "devstack.toml: static.extra[0].dir: ROOT/blue$print holds a $, which nginx reads as a variable "
        "— rename the folder, or remove the entry (the app then serves it)"
    )


def test_a_value_just_under_the_limit_is_taken(here: Path) -> None:
    (here / "devstack.toml").write_text('[app.env]\nA = "' + "x" * (64 * 1024 - 3) + '"\n')
    assert config.load(here / "devstack.toml").app.env["A"] == "x" * (64 * 1024 - 3)


def test_the_variables_in_all_have_a_limit() -> None:
    values = {f"V{i}": "x" * 60000 for i in range(18)}  # ~1.03 MiB in all, each under 64 KiB
    with pytest.raises(ConfigError) as raised:
        config.check_env(values, "devstack.toml", "app.env")
    assert str(raised.value) == (
        "devstack.toml: app.env: the variables hold 1054 KiB, over 1024 KiB in all "
        "— put the data in files and pass their paths"
    )
    config.check_env({f"V{i}": "x" * 60000 for i in range(17)}, "devstack.toml", "app.env")


def test_file_not_found_and_pyproject_tables(here: Path) -> None:
    with pytest.raises(DevstackError) as raised:
        config.load(here / "devstack.toml")
    assert str(raised.value) == "devstack.toml: file not found — create it with `devstack init`"
    assert said(here, "[tool.black]\n", "pyproject.toml") == (
        "pyproject.toml: [tool.devstack]: section missing — add a [tool.devstack] table"
    )
    assert said(here, "[tool.devstack.app]\nwsgi = 3\n", "pyproject.toml") == (
        "pyproject.toml: tool.devstack.app.wsgi: expected a string, got an integer 3 — write a string, "
        'e.g. tool.devstack.app.wsgi = "app:app"'
    )
    (here / "pyproject.toml").write_text('[tool.devstack.app]\nwsgi = "app:app"\n')
    loaded = config.load(here / "pyproject.toml")
    assert loaded.app.wsgi == "app:app" and loaded.source == b'[tool.devstack.app]\nwsgi = "app:app"\n'
