"""How every supervised child is spawned: its own session (Ctrl-C reaches devstack only, and
devstack stops the whole group), stdin from /dev/null, stdout and stderr into pipes devstack
reads. One definition, so that a head start (headstart.py) is indistinguishable from a child
started by Child.start. Imports nothing heavy: the head start runs before everything else."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping


def popen(
    argv: list[str], cwd: str, env: Mapping[str, str], pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        pass_fds=pass_fds,  # a gated head start's pipe (headstart.py)
    )
