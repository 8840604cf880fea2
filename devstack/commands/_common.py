"""What several commands share: finding and loading the config."""

from __future__ import annotations

from pathlib import Path

from devstack import config as config_mod
from devstack.config import Config


def config_file(path: Path | None) -> Path:
    """The config file a command means: --config (a file or a folder) or the nearest one."""
    if path is not None and path.is_dir():
        return config_mod.find_config(path)
    return path if path is not None else config_mod.find_config(Path.cwd())


def load_config(path: Path | None) -> Config:
    return config_mod.load(config_file(path))
