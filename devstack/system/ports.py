"""Ports: is one free, who holds it, the one line that says so, and waiting for one to answer.

Socket calls only (psutil only to name a port's owner): `up` checks its ports before anything
starts, so this stays off the heavy imports of stack/probes.py (http.client, ssl).
"""

from __future__ import annotations

import socket
import time
from typing import NamedTuple


class PortOwner(NamedTuple):
    """Who listens on a port, as far as this user can see. (A NamedTuple: `up`'s head start
    imports this module before anything else, and dataclasses costs ~10 ms to import.)"""

    pid: int | None
    name: str
    cmdline: str
    address: str

    def describe(self) -> str:
        if self.pid is None:
            return "another process (not visible to this user)"
        return f"{self.name} (pid {self.pid}: {self.cmdline[:80]})"


def port_owner(port: int) -> PortOwner | None:
    """Who listens on TCP port (any address), as far as this user can see."""
    import psutil  # only when a port is taken: ~10 ms, never on the path to a start

    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        conns = []
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            address = f"{conn.laddr.ip}:{conn.laddr.port}"
            if conn.pid is None:
                return PortOwner(None, "?", "", address)
            try:
                proc = psutil.Process(conn.pid)
                return PortOwner(conn.pid, proc.name(), " ".join(proc.cmdline()), address)
            except psutil.Error:
                return PortOwner(conn.pid, "?", "", address)
    return None


def port_conflict(host: str, port: int, key: str, file: str, label: str = "port") -> str | None:
    """None when host:port is free to bind; else the one line that says who holds it and how to
    get out of the way (every "port N is taken" in devstack reads alike). label: what port it is
    ("host port" for the VM's forward)."""
    if can_bind(host, port):
        return None
    owner = port_owner(port)
    return port_taken(port, key, file, owner.describe() if owner else "another process", label)


def port_taken(port: int, key: str, file: str, who: str, label: str = "port") -> str:
    return f"{label} {port} ({key} in {file}) is taken by {who} — stop it, or set {key} to a free port"


def can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.005)  # a refused connect is cheap; a late look delays "ready"
    return False
