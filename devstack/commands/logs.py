"""`devstack logs`: the logs of every process, after the fact and live."""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.commands._common import load_config


def run(config_path: Path | None, names: list[str], lines: int = 0) -> int:
    config = load_config(config_path)
    log_dir = config.state_dir / "logs"
    for path in sorted(log_dir.glob("*.log")):
        if names and path.stem not in names:
            continue
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for line in content[-lines:] if lines else content:
            sys.stdout.write(f"{path.stem} | {line}\n")
    return 0
