"""VM-mode benchmark, one command: `python benchmarks/bench_vm.py` (root; ~6 min).

Sets up the real-VM environment like .ci/vm-tier (libvirt in a network namespace made for the
run, the cached test box), re-runs itself inside that namespace, and prints one table with each
devstack figure beside its baseline measured in the same run:

  edit -> fresh   a host edit of a static file until its new bytes come back through the
                  forwarded port: devstack's own sync (running `devstack up --vm`) vs
                  `vagrant rsync` run right after the edit (what rsync folders offer).
  boot -> ready   `devstack up --vm` on a fresh VM until the stack is proven ready through the
                  forward vs a bare `vagrant up` of the same Vagrantfile (which starts no stack).
  warm -> ready   `devstack up --vm` again with the VM still running (goal <= 5 s) vs `vagrant up`
                  on that running VM, which only confirms it runs and starts no stack.

A warm-up `vagrant up` first puts the box image into the libvirt pool, so neither timed boot
pays for that upload.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EDITS = 5


def outside() -> int:
    env = os.environ.copy()
    env.setdefault("DEVSTACK_VM_NS", f"devstack-bench-{os.getpid()}")
    env.setdefault("DEVSTACK_VM_RUN", f"/tmp/devstack-vm-bench-{os.getpid()}")
    env.setdefault("DEVSTACK_VM_CACHE", "/var/cache/devstack-vm")
    env.setdefault("VAGRANT_HOME", env["DEVSTACK_VM_CACHE"] + "/vagrant.d")
    try:
        subprocess.run(["bash", str(REPO / "vm/host-up.sh")], env=env, check=True)
        for line in Path(env["DEVSTACK_VM_RUN"], "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        box = (
            subprocess.run(
                ["bash", str(REPO / "vm/build-box.sh")], env=env, check=True, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        subprocess.run(["bash", str(REPO / "vm/add-box.sh"), box], env=env, check=True)
        return subprocess.run(
            ["ip", "netns", "exec", env["DEVSTACK_VM_NS"], sys.executable, __file__, "--inside"],
            env=env,
            check=False,
        ).returncode
    finally:
        subprocess.run(["bash", str(REPO / "vm/host-down.sh")], env=env, check=False)
        shutil.rmtree(env["DEVSTACK_VM_RUN"], ignore_errors=True)


def inside() -> int:
    from devstack.project.config import load
    from devstack.stack import probes
    from devstack.vm import vagrantfile

    base = Path(tempfile.mkdtemp(prefix="devstack-bench-"))
    root = base / "chat"
    shutil.copytree(REPO / "examples/chat", root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    env = os.environ.copy()
    env["PYTHONPATH"] = str(REPO)
    env["NO_COLOR"] = "1"
    config = load(root / "devstack.toml")
    vm_dir = vagrantfile.vm_dir(config)
    vagrantfile.write(vagrantfile.gather(config))

    def vagrant(*args: str) -> float:
        started = time.monotonic()
        subprocess.run(
            ["vagrant", *args],
            cwd=vm_dir,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.monotonic() - started

    def devstack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    url = "http://127.0.0.1:8001"
    results: list[tuple[str, str, float, str, float]] = []
    print("warm-up: vagrant up (loads the box into the pool) ...", flush=True)
    vagrant("up", "--provider=libvirt")
    vagrant("destroy", "-f")

    def up_vm() -> tuple[subprocess.Popen[bytes], float, dict[str, object]]:
        """`devstack up --vm` until state.json says ready: (the process, seconds, its phases)."""
        started = time.monotonic()
        log = open(base / "up.out", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--vm"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        state = root / ".devstack" / "state.json"
        while '"status": "ready"' not in (state.read_text() if state.exists() else ""):
            if proc.poll() is not None or time.monotonic() - started > 600:
                raise RuntimeError((base / "up.out").read_text(errors="replace")[-2000:])
            time.sleep(0.05)
        seconds = time.monotonic() - started
        return proc, seconds, json.loads(state.read_text())["extra"]["vm"]

    print("devstack up --vm on a fresh VM ...", flush=True)
    up, devstack_up, phases = up_vm()

    def fresh_after(path: Path, rel_url: str, after_write: list[str] | None) -> float:
        text = f"/* {time.time_ns()} */\n" * 20
        started = time.monotonic()
        path.write_text(text, encoding="utf-8")
        if after_write:
            vagrant(*after_write)
        while True:
            try:
                if probes.http_get(url + rel_url, timeout=5).body == text.encode():
                    return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > 120:
                raise RuntimeError(f"{rel_url} never fresh")
            time.sleep(0.01)

    print(f"{EDITS} edits synced by devstack, {EDITS} by `vagrant rsync` ...", flush=True)
    # Two files in the same static folder, served by the same nginx. devstack's watcher skips
    # *.tmp names, so the baseline file travels only by `vagrant rsync`.
    ours = [fresh_after(root / "static/bench.css", "/static/bench.css", None) for _ in range(EDITS)]
    theirs = [
        fresh_after(root / "static/bench-baseline.tmp", "/static/bench-baseline.tmp", ["rsync"])
        for _ in range(EDITS)
    ]
    devstack("down")
    up.wait(timeout=60)

    print("devstack up --vm again, the VM still running (warm) ...", flush=True)
    up, warm_up, warm_phases = up_vm()
    devstack("down")
    up.wait(timeout=60)
    print("baseline: vagrant up on the running VM ...", flush=True)
    warm_vagrant = vagrant("up", "--provider=libvirt")
    devstack("down", "--destroy")

    print("baseline: bare vagrant up of the same Vagrantfile ...", flush=True)
    bare_up = vagrant("up", "--provider=libvirt")
    vagrant("destroy", "-f")

    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    results.append(
        (
            "host edit -> fresh through :8001 (median of 5)",
            "devstack sync",
            ours_ms,
            "vagrant rsync",
            theirs_ms,
        )
    )
    results.append(
        (
            "fresh VM -> ready",
            "devstack up --vm",
            devstack_up * 1000,
            "bare vagrant up (no stack)",
            bare_up * 1000,
        )
    )
    results.append(
        (
            "VM running -> ready (warm up --vm; goal 5 s)",
            "devstack up --vm",
            warm_up * 1000,
            "vagrant up (no stack)",
            warm_vagrant * 1000,
        )
    )
    print()
    print(f"{'measure':<48} {'devstack':>22} {'baseline':>34} {'baseline/devstack':>18}")
    for name, ours_name, ours_v, theirs_name, theirs_v in results:
        print(
            f"{name:<48} {ours_name + ' ' + _fmt(ours_v):>22} "
            f"{theirs_name + ' ' + _fmt(theirs_v):>34} {theirs_v / ours_v:>17.2f}x"
        )
    print(
        f"\ndevstack up --vm = {phases['boot_seconds']} s vagrant (VM booted) + "
        f"{phases['stack_seconds']} s stack (ssh-config, source push, sync, guest stack start, "
        "readiness through the forward)"
    )
    print(f"warm up --vm, seconds per step: {warm_phases.get('phases')}")
    print(
        f"edits, devstack ms: {[round(x * 1000) for x in ours]}; "
        f"vagrant rsync ms: {[round(x * 1000) for x in theirs]}"
    )
    shutil.rmtree(base, ignore_errors=True)
    return 0


def _fmt(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


if __name__ == "__main__":
    sys.exit(inside() if "--inside" in sys.argv else outside())
