"""`devstack status [--json]`: what runs, with PIDs, ports and readiness."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from devstack.commands._common import load_config
from devstack.stack import state
from devstack.system import env as env_mod
from devstack.system.env import Env

# Plain ANSI, not rich: importing rich would double this command's run time.
GREEN, RED, RESET = "\x1b[32m", "\x1b[31m", "\x1b[0m"


def collect(config_path: Path | None) -> dict[str, Any]:
    config = load_config(config_path)
    current = state.read(config.state_dir)
    if current is None:
        return {"running": False, "status": "stopped", "url": config.public_url, "processes": {}}
    alive = current.supervisor is not None and current.supervisor.alive()
    crashes = current.extra.get("crashes", {}) if isinstance(current.extra.get("crashes"), dict) else {}
    procs = {
        name: {
            "pid": rec.pid,
            "alive": rec.alive(),
            "uptime_s": round(time.time() - rec.create_time, 1) if rec.alive() else None,
            # Exits nobody asked for, each followed by a restart (with backoff), and the last
            # error line of the last one.
            "restarts": int(crashes.get(name, {}).get("restarts", 0)),
            "last_error": str(crashes.get(name, {}).get("line", "")),
        }
        for name, rec in current.processes.items()
    }
    died = current.status in ("ready", "starting")  # the supervisor vanished without a stop
    status = current.status if alive else ("crashed" if died else "stopped")
    return {
        "running": alive,
        "status": status,
        "url": current.url,
        "mode": current.mode,
        "supervisor_pid": current.supervisor.pid if current.supervisor else None,
        "ports": current.ports,
        "ready_seconds": current.ready_seconds,
        "error": current.error,
        "processes": procs,
        "python": current.extra.get("python"),
        "dashboard": f"{current.url}{current.extra['dashboard']}" if current.extra.get("dashboard") else None,
        "queue": current.extra.get("queue"),  # app.nodes > 1 or [queue]: its URL, the variable
    }


def run(config_path: Path | None, as_json: bool = False, env: Env | None = None) -> int:
    env = env or env_mod.current()
    info = collect(config_path)
    if as_json:
        env.write_json(info)
        return 0 if info["running"] else 1
    color = env.color("auto")  # status has no --color: NO_COLOR, FORCE_COLOR, the tty
    mark = "running" if info["running"] else str(info["status"])
    if info["running"] and info["status"] == "waiting":
        mark = "waiting for a fix"  # nginx runs; the app did not start (its error follows)
    if color:
        mark = f"{GREEN if info['running'] else RED}{mark}{RESET}"
    lines = [f"{mark} {info['url']}/" + (f"  ({info['error']})" if info.get("error") else "")]
    if info.get("dashboard") and info["running"]:
        lines.append(f"dashboard: {info['dashboard']}")
    python = info.get("python")
    if isinstance(python, dict) and python.get("path"):
        lines.append(f"app python: {python['path']} ({python.get('why', '')})")
    queue = info.get("queue")
    if isinstance(queue, dict) and queue.get("url"):
        who = "run by devstack" if queue.get("started") else "yours (queue.url)"
        lines.append(f"message queue: {queue['url']} ({who}), in ${queue.get('env', 'REDIS_URL')}")
    if info["processes"]:
        rows = [("process", "pid", "state", "uptime", "restarts")]
        for name, proc in info["processes"].items():
            up = f"{proc['uptime_s']:.0f} s" if proc["uptime_s"] is not None else "-"
            restarts = str(proc.get("restarts", 0))
            rows.append((name, str(proc["pid"]), "up" if proc["alive"] else "down", up, restarts))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for name, proc in info["processes"].items():
            if proc.get("restarts") and name != "gunicorn":  # gunicorn's own error is the status line's
                last = proc.get("last_error") or "no output"
                lines.append(f"{name}: restarted {proc['restarts']} times after exiting; last error: {last}")
    env.out().write("\n".join(lines) + "\n")
    return 0 if info["running"] else 1
