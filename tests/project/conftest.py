from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.configfile import make_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def here(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project as the working folder: load() shows the file relative to it."""
    monkeypatch.chdir(root)
    return root
