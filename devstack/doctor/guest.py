"""VM mode: run the same doctor inside the guest, against the guest's own stack.

The guest-side faults (the share's filesystem type with sendfile, the reload engine on a shared
folder, nginx and gunicorn as the guest sees them) can only be seen from inside; the guest has
devstack's own source (pushed at `up --vm`), so it runs the very same checks there.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from typing import Any

from devstack.project.config import Config
from devstack.stack import state


@dataclass
class GuestReport:
    exit_code: int
    report: dict[str, Any] | None  # the guest doctor's --json report
    text: str  # its rich output, or why it could not run
    clock_skew: float | None  # guest clock minus host clock, seconds


def in_vm_mode(config: Config) -> bool:
    current = state.read(config.state_dir)
    return bool(
        current is not None
        and current.mode == "vm"
        and current.supervisor is not None
        and current.supervisor.alive()
    )


# The guest's nginx listens on 0.0.0.0 on purpose (the forward reaches it over the VM's isolated
# network): the net area is judged on the host, through the forward, not in the guest.
GUEST_AREAS = ("static", "nginx", "socketio", "gunicorn")
# Judged only in the guest, where the processes and the rendered nginx.conf live.
GUEST_ONLY_AREAS = ("nginx", "gunicorn")


def guest_command(config: Config, as_json: bool, checks: list[str] | None = None) -> str:
    from devstack.vm.agent import GUEST_SRC, GUEST_STATE

    rel_static = config.static_dir.relative_to(config.root.resolve()).as_posix()
    guest_static = f"{config.vm.guest_path.rstrip('/')}/{rel_static}"
    args = [
        "python3",
        "-m",
        "devstack",
        "doctor",
        *(checks or GUEST_AREAS),
        "--url",
        f"http://127.0.0.1:{config.server.listen_port}",
        "--nginx-conf",
        f"{GUEST_STATE}/nginx.conf",
        "--static-dir",
        guest_static,
        "--static-url",
        config.static.url,
        "--app-url",
        f"http://127.0.0.1:{config.server.app_port}",
        "--gunicorn-log",
        f"{GUEST_STATE}/logs/gunicorn.log",
    ]
    args += ["--json"] if as_json else ["--color", "always"]
    return f"cd /tmp && PYTHONPATH={GUEST_SRC} " + " ".join(shlex.quote(a) for a in args)


def run(
    config: Config, as_json: bool, checks: list[str] | None = None, timeout: float = 120.0
) -> GuestReport:
    from devstack.vm import guest

    before = time.time()
    code, out, err = guest.run_in_guest(config, "date +%s.%N", timeout=30)
    after = time.time()
    skew = None
    if code == 0:
        try:
            skew = float(out.strip()) - (before + after) / 2
        except ValueError:
            skew = None
    code, out, err = guest.run_in_guest(config, guest_command(config, as_json, checks), timeout=timeout)
    if code == 255:
        return GuestReport(code, None, f"cannot reach the VM: {err.strip()[:200]}", skew)
    report = None
    if as_json:
        try:
            report = json.loads(out)
        except ValueError:
            return GuestReport(2, None, f"the guest doctor said: {(err or out).strip()[:300]}", skew)
    return GuestReport(code, report, out if not as_json else "", skew)
