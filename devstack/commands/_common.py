"""What several commands share: finding and loading the config."""

from __future__ import annotations

from pathlib import Path

from devstack.project import config as config_mod
from devstack.project.config import Config
from devstack.system import env as env_mod


def config_file(path: Path | None) -> Path:
    """The config file a command means: --config (a file or a folder) or the nearest one."""
    if path is None:
        return config_mod.find_config(env_mod.current().working_dir())
    path = from_cwd(path)
    return config_mod.find_config(path) if path.is_dir() else path


def from_cwd(path: Path) -> Path:
    """A relative path from the command line, against the Env's working folder when one was
    given (in-process tests); else left as typed (the process's own folder)."""
    cwd = env_mod.current().cwd
    return cwd / path if cwd is not None and not path.is_absolute() else path


def load_config(path: Path | None) -> Config:
    return config_mod.load(config_file(path))
