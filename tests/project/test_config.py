"""Pure config parsing and validation (fast: no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.errors import ConfigError
from devstack.project import config
from tests.support.configfile import load


@pytest.mark.unit
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


@pytest.mark.unit
def test_static_url_always_gets_its_trailing_slash(root: Path) -> None:
    assert load(root, '[static]\nurl = "/assets"\n').static.url == "/assets/"


@pytest.mark.unit
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


@pytest.mark.unit
def test_find_config_searches_upwards(root: Path) -> None:
    (root / "devstack.toml").write_text("")
    deeper = root / "a" / "b"
    deeper.mkdir(parents=True)
    assert config.find_config(deeper) == (root / "devstack.toml").resolve()


@pytest.mark.unit
def test_static_at_the_site_root(root: Path) -> None:
    # Flask(__name__, static_folder=".", static_url_path=""): what `init` once wrote as "//".
    for written in ("/", "//", ""):
        cfg = load(root, f'[static]\ndir = "."\nurl = "{written}"\n')
        assert cfg.static.url == "/" and cfg.static.at_root
        assert cfg.static_dir == root.resolve()
    assert not load(root, "").static.at_root


@pytest.mark.unit
def test_static_extra_routes(root: Path) -> None:
    (root / "chat" / "static").mkdir(parents=True)
    cfg = load(root, '[[static.extra]]\nurl = "/chat/static"\ndir = "chat/static"\n')
    assert cfg.static.extra == (config.StaticRoute("/chat/static/", Path("chat/static")),)
    assert cfg.static_routes == [
        ("/static/", (root / "static").resolve()),
        ("/chat/static/", (root / "chat" / "static").resolve()),
    ]
    # The default config has none: a single-static project reads as before.
    assert load(root, "").static.extra == ()
