"""A render kept in its cache file (stack/templates.py): the same template from the same values is read
back without jinja2; anything that changes the text renders again; the cache file is a state
file like the others (a symlink planted there is refused, a broken one is replaced)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.stack import templates
from devstack.system import safefs

VALUES = {
    "prefix": "/srv/app/.devstack",
    "listen": "127.0.0.1:8001",
    "app_port": 5000,
    "static_url": "/static",
    "static_dir": "/srv/app/static",
    "autoindex": False,
    "sendfile": True,
    "static_fstype": "ext4",
    "proxy_read_timeout": 3600,
    "mime_types": "/etc/nginx/mime.types",
    "error_log_level": "warn",
    "user": "",
    "live_socket": "",
    "live_notify": "/srv/app/.devstack/live/notify.sock",
    "server_names": ["127.0.0.1", "localhost", "[::1]"],
    "root_private": "(^|/)\\.",
}


def no_jinja2(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("jinja2 was asked although the cache had this render")

    monkeypatch.setattr(templates, "_environment", refuse)


@pytest.mark.unit
def test_the_same_values_are_read_back_without_jinja2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / ".nginx.conf.cache"
    first = templates.render("nginx.conf.j2", cache=cache, **VALUES)
    assert "listen 127.0.0.1:8001" in first and cache.is_file()
    no_jinja2(monkeypatch)
    assert templates.render("nginx.conf.j2", cache=cache, **VALUES) == first


@pytest.mark.unit
def test_a_changed_value_renders_again(tmp_path: Path) -> None:
    cache = tmp_path / ".nginx.conf.cache"
    templates.render("nginx.conf.j2", cache=cache, **VALUES)
    moved = templates.render("nginx.conf.j2", cache=cache, **{**VALUES, "listen": "127.0.0.1:8002"})
    assert "listen 127.0.0.1:8002" in moved and "8001" not in moved
    assert json.loads(cache.read_text())["text"] == moved  # the cache now holds the new render


@pytest.mark.unit
def test_another_devstack_or_a_broken_cache_renders_again(tmp_path: Path) -> None:
    cache = tmp_path / ".nginx.conf.cache"
    text = templates.render("nginx.conf.j2", cache=cache, **VALUES)
    key = json.loads(json.loads(cache.read_text())["key"])
    key[0] = "0.0.1"  # what an older devstack, with its own template, rendered
    cache.write_text(json.dumps({"key": json.dumps(key, sort_keys=True), "text": "stale"}))
    assert templates.render("nginx.conf.j2", cache=cache, **VALUES) == text
    cache.write_text("{half a file")
    assert templates.render("nginx.conf.j2", cache=cache, **VALUES) == text
    assert json.loads(cache.read_text())["text"] == text


@pytest.mark.unit
def test_a_symlink_planted_as_the_cache_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache = tmp_path / ".nginx.conf.cache"
    cache.symlink_to(victim)
    with pytest.raises(safefs.HostileFile, match="symbolic link"):
        templates.render("nginx.conf.j2", cache=cache, **VALUES)
    assert victim.read_text() == "precious"


@pytest.mark.unit
def test_without_its_folder_the_render_is_still_made(tmp_path: Path) -> None:
    cache = tmp_path / "no-state-dir-yet" / ".nginx.conf.cache"
    assert "listen 127.0.0.1:8001" in templates.render("nginx.conf.j2", cache=cache, **VALUES)
    assert not cache.exists()
