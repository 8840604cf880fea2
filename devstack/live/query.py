"""Ask a running stack's live-reload server about its tabs (doctor's browser rung, tests).

Straight over the unix socket, never through nginx: the route refuses requests nginx forwards.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from devstack.stack import livepaths as paths


def tabs_report(state_dir: Path, timeout: float = 4.0) -> dict[str, Any] | None:
    """{"tabs": N, "answers": [{tab, path, sheets: [{path, sha, same}]}]}; None: no live server."""
    target = paths.stream_socket(state_dir)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(target))
            sock.sendall(b"GET /__devstack/tabs HTTP/1.1\r\nHost: devstack\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        return None
    try:
        report = json.loads(body)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def post(
    state_dir: Path, action: str, body: dict[str, Any], timeout: float = 10.0
) -> tuple[int, dict[str, Any]]:
    """One dashboard action (restart, doctor, clear-stale) from the CLI, over the unix socket
    (never through nginx, so no token is needed: the socket is this user's alone, mode 0600).
    (0, {}) when no live server answers."""
    payload = json.dumps(body).encode()
    request = (
        f"POST /__devstack/internal/{action} HTTP/1.1\r\nHost: devstack\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(paths.stream_socket(state_dir)))
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return 0, {}
    head, _, rest = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
        answer = json.loads(rest)
    except (IndexError, ValueError):
        return 0, {}
    return status, answer if isinstance(answer, dict) else {}


def post_public(
    url: str, action: str, body: dict[str, Any], timeout: float = 10.0
) -> tuple[int, dict[str, Any]]:
    """The same action through the stack's public URL, as the page does it (the VM's stack, whose
    unix socket is in the guest): the page's token, and the stack's own origin. (0, {}) when the
    dashboard does not answer."""
    import http.client
    import re
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host = parts.netloc

    def connect() -> http.client.HTTPConnection:  # the live server closes after each answer
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)

    try:
        conn = connect()
        conn.request("GET", "/__devstack/", headers={"Host": host})
        page = conn.getresponse().read().decode("utf-8", "replace")
        conn.close()
        match = re.search(r'name="devstack-token" content="([^"]+)"', page)
        if match is None:
            return 0, {}
        headers = {
            "Host": host,
            "Origin": f"{parts.scheme}://{host}",
            "X-Devstack-Token": match.group(1),
            "Content-Type": "application/json",
        }
        conn = connect()
        conn.request("POST", f"/__devstack/api/{action}", body=json.dumps(body), headers=headers)
        answer = conn.getresponse()
        status, data = answer.status, answer.read()
        conn.close()
    except OSError:
        return 0, {}
    try:
        parsed = json.loads(data)
    except ValueError:
        return status, {}
    return status, parsed if isinstance(parsed, dict) else {}
