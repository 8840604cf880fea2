"""Picks the watchdog observer: inotify where events arrive, polling on shared folders."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from devstack.system import fsinfo
from devstack.watch.poller import CheapPollingObserver

# Editors write these around a save; none of them is the file the user meant.
IGNORED_NAMES = (
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    "*.tmp",
    ".DS_Store",
    "*.pyc",
    "*.pyo",
    "*___jb_tmp___",
    "*___jb_old___",
    ".*.kate-swp",
    "*.crdownload",
    "*.devstack-sync",  # the VM sync's own write-beside-then-rename file (vm/agent.py receive)
)
IGNORED_DIRS = (
    "__pycache__",
    ".git",
    ".devstack",
    ".hg",
    ".svn",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".venv",
    "venv",
    ".vagrant",
)


def ignored(path: str) -> bool:
    p = Path(path)
    if any(part in IGNORED_DIRS for part in p.parts):
        return True
    return any(fnmatch.fnmatch(p.name, pattern) for pattern in IGNORED_NAMES)


def make_observer(folder: Path, mode: str = "auto", interval: float = 0.25) -> tuple[BaseObserver, str]:
    """mode: auto | always | never (polling). Returns the observer and a word for the logs."""
    polling = mode == "always" or (mode == "auto" and fsinfo.is_shared(fsinfo.fstype(folder)))
    if polling:
        # Not watchdog's PollingObserver: its full snapshot diff costs ~7 % of a core on 10k files.
        return CheapPollingObserver(timeout=interval), "polling"
    return Observer(), "inotify"
