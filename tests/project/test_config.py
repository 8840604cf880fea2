"""Pure config parsing and validation (fast: no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.errors import ConfigError
from devstack.project import config


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "static").mkdir()
    (tmp_path / "app.py").write_text("app = None\n")
    return tmp_path


def load(root: Path, text: str) -> config.Config:
    path = root / "devstack.toml"
    path.write_text(text)
    return config.load(path)


def test_defaults(root: Path) -> None:
    cfg = load(root, "")
    assert cfg.app.wsgi == "app:app"
    assert cfg.app.worker == "gthread"
    assert cfg.server.listen == "127.0.0.1:5000"
    assert cfg.server.app_port == 5001
    assert cfg.static.url == "/static/"
    assert cfg.static_dir == (root / "static").resolve()
    assert cfg.public_url == "http://127.0.0.1:5000"
    assert cfg.vm.host_port == 8001


def test_static_url_always_gets_its_trailing_slash(root: Path) -> None:
    assert load(root, '[static]\nurl = "/assets"\n').static.url == "/assets/"


@pytest.mark.parametrize(
    "text, key",
    [
        ('[app]\nworker = "sync"\n', "app.worker"),
        ("[app]\nthreads = 0\n", "app.threads"),
        ('[app]\nreload = "yes"\n', "app.reload"),
        ('[app]\nwsgi = "not a module"\n', "app.wsgi"),
        ('[static]\nurl = "static"\n', "static.url"),
        ('[static]\nurl = "/"\n', "static.url"),
        ('[static]\nurl = "/a/../b/"\n', "static.url"),
        ('[server]\nlisten = "5000"\n', "server.listen"),
        ('[server]\nlisten = "127.0.0.1:70000"\n', "server.listen"),
        ("[server]\napp_port = 5000\n", "server.app_port"),
        ("[server]\nthreads = 4\n", "server.threads"),
        ('[vm]\nprovider = "docker"\n', "vm.provider"),
        ('[processes]\nnginx = "x"\n', "processes.nginx"),
        ('[processes]\ncss = ""\n', "processes.css"),
        ("[nope]\n", "nope"),
        ("app = 3\n", "[app]"),
    ],
)
def test_invalid_values_name_the_key(root: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(root, text)
    assert info.value.key == key
    message = str(info.value)
    assert "devstack.toml" in message and "\n" not in message and " — " in message


def test_pyproject_tool_section(root: Path) -> None:
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.devstack.server]\napp_port = 6001\n')
    found = config.find_config(root)
    assert found.name == "pyproject.toml"
    cfg = config.load(found)
    assert cfg.server.app_port == 6001
    with pytest.raises(ConfigError) as info:
        (root / "pyproject.toml").write_text("[tool.devstack.server]\nport = 1\n")
        config.load(found)
    assert info.value.key == "tool.devstack.server.port"


def test_find_config_searches_upwards(root: Path) -> None:
    (root / "devstack.toml").write_text("")
    deeper = root / "a" / "b"
    deeper.mkdir(parents=True)
    assert config.find_config(deeper) == (root / "devstack.toml").resolve()
