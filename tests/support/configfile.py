"""A devstack.toml written into a test project and loaded: the config or its refusal line."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.project import config


def make_root(folder: Path) -> Path:
    """The smallest project load() accepts: app.py and a static folder."""
    (folder / "static").mkdir(parents=True)
    (folder / "app.py").write_text("app = None\n")
    return folder


def load(root: Path, text: str, name: str = "devstack.toml") -> config.Config:
    (root / name).write_text(text)
    return config.load(root / name)


def refusal(path: Path, root: Path) -> str:
    """load()'s one line for path, the project folder shown as ROOT."""
    with pytest.raises(DevstackError) as raised:
        config.load(path)
    return str(raised.value).replace(str(root), "ROOT")


def said(root: Path, text: str | bytes, name: str = "devstack.toml") -> str:
    path = root / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return refusal(path, root)
