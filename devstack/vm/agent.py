"""The guest side of VM mode: `python3 -m devstack.vm.agent run|receive|follow`.

Runs inside the VM from the copy of devstack's source that `up --vm` pushes there, with the
stack's packages from the box. Stdlib plus devstack's own local backend: no host paths, no
network besides loopback and the forwarded port.

  run      the same local stack as `devstack up`, with a config derived for the guest
           (nginx on 0.0.0.0 so the port forward reaches it; state outside the synced folder)
  receive  the sync receiver: framed file writes/deletes on stdin, one ack line per frame
  follow   prints every new line of the guest's log files as "<source>\\t<line>"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import BinaryIO

GUEST_BASE = Path("/opt/devstack")
GUEST_SRC = GUEST_BASE / "src"
GUEST_STATE = GUEST_BASE / "state"
UNIT = "devstack-stack"


def _run(config_file: Path, guest_state_dir: Path) -> int:
    from devstack.backends import foreground
    from devstack.project import config as config_mod
    from devstack.stack import facts, plan

    def guest_load(path: Path) -> config_mod.Config:
        """The synced devstack.toml, derived for the guest by plain fields (no subclass): state
        outside the share, and nginx on every interface, since the forward connects to the
        guest's own address (reachable only through the VM's network and the host's loopback)."""
        base = config_mod.load(path)
        server = dataclasses.replace(base.server, listen_host="0.0.0.0")
        return dataclasses.replace(base, server=server, state_root=guest_state_dir)

    config = guest_load(config_file)
    guest_state_dir.mkdir(parents=True, exist_ok=True)
    host = facts.gather(config, python=sys.executable)  # the guest venv runs the app
    the_plan = plan.build(config, host, colors=False)
    # The live re-plan after an edit of the synced devstack.toml derives the guest config again.
    return foreground.supervise(config, the_plan, "never", daemon=True, load=guest_load)


def _safe(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not rel or rel.startswith("/") or (target != root and root not in target.parents):
        raise ValueError(f"path outside the synced folder: {rel!r}")
    return target


def _receive(root: Path, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Frames: a JSON header line, then `size` bytes for a put. One reply line per frame."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    stdout.write(b"ready\n")
    stdout.flush()
    while True:
        header = stdin.readline()
        if not header:
            return 0
        frame = json.loads(header)
        seq = frame.get("seq", 0)
        # Read a put's bytes before anything can fail, so the stream stays in step.
        data = stdin.read(frame["size"]) if frame.get("op") == "put" else b""
        try:
            target = _safe(root, frame["path"])
            if frame["op"] == "put":
                target.parent.mkdir(parents=True, exist_ok=True)
                # Write beside, then rename: nginx and the reloader never see half a file.
                tmp = target.with_name(f".{target.name}.devstack-sync")
                with open(tmp, "wb") as handle:
                    handle.write(data)
                os.chmod(tmp, frame.get("mode", 0o644))
                os.utime(tmp, ns=(frame["mtime_ns"], frame["mtime_ns"]))
                os.replace(tmp, target)
            elif frame["op"] == "del":
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
            reply = f"ok {seq}\n"
        except (OSError, ValueError, KeyError) as exc:
            reply = f"err {seq} {exc}\n".replace("\n", " ").rstrip() + "\n"
        stdout.write(reply.encode())
        stdout.flush()


def _follow(log_dir: Path, stdout: BinaryIO, interval: float = 0.05) -> int:
    """Tail every *.log in log_dir (files that appear later too), from their current end."""
    offsets: dict[str, int] = {}
    partial: dict[str, bytes] = {}
    log_dir.mkdir(parents=True, exist_ok=True)
    for path in log_dir.glob("*.log"):
        offsets[path.name] = path.stat().st_size
    stdout.write(b"following\n")
    stdout.flush()
    while True:
        wrote = False
        for path in sorted(log_dir.glob("*.log")):
            try:
                size = path.stat().st_size
                offset = offsets.get(path.name, 0)
                if size < offset:  # rotated or truncated: start again at its top
                    offset = 0
                if size == offset:
                    continue
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(size - offset)
                offsets[path.name] = offset + len(data)
            except OSError:
                continue
            data = partial.pop(path.name, b"") + data
            lines = data.split(b"\n")
            if lines[-1]:
                partial[path.name] = lines[-1]
            source = path.name[:-4].encode()
            for line in lines[:-1]:
                stdout.write(source + b"\t" + line + b"\n")
                wrote = True
        if wrote:
            stdout.flush()
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.vm.agent")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--state", type=Path, default=GUEST_STATE)
    receive = sub.add_parser("receive")
    receive.add_argument("root", type=Path)
    follow = sub.add_parser("follow")
    follow.add_argument("log_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "run":
            return _run(args.config, args.state)
        if args.cmd == "receive":
            return _receive(args.root, sys.stdin.buffer, sys.stdout.buffer)
        return _follow(args.log_dir, sys.stdout.buffer)
    except (KeyboardInterrupt, BrokenPipeError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
