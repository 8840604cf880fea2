"""`devstack up --vm` / `devstack down --halt|--destroy`: the stack inside a Vagrant VM."""

from __future__ import annotations

from devstack.config import Config
from devstack.errors import DevstackError, Exit


def run(config: Config, color: str = "auto") -> int:
    raise DevstackError("VM mode is not available in this build — run `devstack up` "
                        "for the local stack", Exit.VM)


def down(config: Config, halt: bool = False, destroy: bool = False) -> int:
    raise DevstackError("VM mode is not available in this build", Exit.VM)
