"""What several commands share: finding and loading the config."""

from __future__ import annotations

from pathlib import Path

from devstack import config as config_mod
from devstack.config import Config


def load_config(path: Path | None) -> Config:
    if path is not None and path.is_dir():
        path = config_mod.find_config(path)
    return config_mod.load(path if path is not None else config_mod.find_config(Path.cwd()))
