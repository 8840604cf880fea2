"""Several Socket.IO nodes (app.nodes = 3) against one, and against the same topology by hand.

One command: `python benchmarks/bench_nodes.py [--starts N] [--messages N] [--edits N] [--clients N]`
(inside a network namespace of its own: `unshare -n` with lo up, or on a quiet machine). Runs
everything for real (nginx, gunicorn, redis-server, examples/nodes) with this checkout
(PYTHONPATH) and this interpreter, and prints one table whose ratio column compares each row with
its baseline measured in the same run, interleaved where it can be:

- `up` -> ready, 3 nodes vs 1 node (goal <= 1.5 x), and a hand-made baseline: a shell script
  starting three gunicorns, redis-server and nginx, until every node answers through nginx;
- an emit's delivery latency to a client on another node (through Redis) vs to a client of the
  same single node (p50/p99; goal cross-node p50 <= 5 ms);
- messages/s delivered to N connected clients over 3 nodes through nginx vs straight to one gunicorn;
- a code edit -> every node serving the new code (p50; goal <= 0.3 s for 3 nodes).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.stack import probes  # noqa: E402
from devstack.stack.nodes import NodeClient  # noqa: E402

EXAMPLE = REPO / "examples" / "nodes"
PY = sys.executable


def env() -> dict[str, str]:
    e = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    for name in ("GUNICORN_CMD_ARGS", "VIRTUAL_ENV", "REDIS_URL"):
        e.pop(name, None)
    return e


def port_range(count: int) -> int:
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + count > 64000:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free ports")


class Project:
    def __init__(self, base: Path, nodes: int, threads: int = 16, queue: bool = True) -> None:
        self.root = base / f"nodes{nodes}-{time.monotonic_ns()}"
        shutil.copytree(EXAMPLE, self.root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
        self.nodes = nodes
        self.app_port = port_range(nodes + 2)
        self.public = self.app_port + nodes + 1
        queue_table = '[queue]\nenv = "REDIS_URL"\n' if queue and nodes > 1 else ""
        (self.root / "devstack.toml").write_text(
            f'[app]\nwsgi = "app:app"\nnodes = {nodes}\nthreads = {threads}\n\n{queue_table}\n'
            f'[server]\nlisten = "127.0.0.1:{self.public}"\napp_port = {self.app_port}\n'
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public}"

    def devstack(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, "-m", "devstack", *args],
            cwd=self.root,
            env=env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def up(self) -> float:
        started = time.perf_counter()
        result = self.devstack("up", "--detach")
        took = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"up failed: {result.stderr}")
        return took

    def down(self) -> None:
        self.devstack("down")


def wait_answer(url: str, cookie: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            resp = probes.http_get(url + "/", timeout=2, headers={"Cookie": cookie} if cookie else {})
            if resp.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} never answered")


BY_HAND = r"""
set -e
cd "$1"; base=$2; public=$3; py=$4
mkdir -p hand/tmp
for i in 0 1 2; do
  REDIS_URL=redis://127.0.0.1:$((base + 3))/0 DEVSTACK_NODE=$((i + 1)) DEVSTACK_ASYNC_MODE=threading \
    "$py" -m gunicorn -w 1 -k gthread --threads 16 -b 127.0.0.1:$((base + i)) app:app >hand/g$i.log 2>&1 &
done
redis-server --bind 127.0.0.1 --port $((base + 3)) --save "" --appendonly no >hand/redis.log 2>&1 &
cat >hand/nginx.conf <<EOF
worker_processes 1;
pid $PWD/hand/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $PWD/hand/tmp; proxy_temp_path $PWD/hand/tmp;
  fastcgi_temp_path $PWD/hand/tmp; uwsgi_temp_path $PWD/hand/tmp; scgi_temp_path $PWD/hand/tmp;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream n1 { server 127.0.0.1:$base; }
  upstream n2 { server 127.0.0.1:$((base + 1)); }
  upstream n3 { server 127.0.0.1:$((base + 2)); }
  split_clients "\${request_id}" \$new { 33.33% 1; 33.33% 2; * 3; }
  map \$cookie_node \$node { "1" 1; "2" 2; "3" 3; default \$new; }
  server {
    listen 127.0.0.1:$public;
    location / {
      proxy_pass http://n\$node; proxy_http_version 1.1;
      proxy_set_header Host \$http_host; proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
    }
  }
}
EOF
nginx -p "$PWD/hand" -c "$PWD/hand/nginx.conf" -e stderr -g 'daemon off;' >hand/nginx.log 2>&1 &
wait
"""


def by_hand_ready(base: Path) -> float:
    """Three gunicorns + redis-server + nginx by a shell script, until every node answers."""
    root = base / f"hand-{time.monotonic_ns()}"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    app_port = port_range(5)
    public = app_port + 4
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["bash", "-c", BY_HAND, "by-hand", str(root), str(app_port), str(public), PY],
        env=env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for node in (1, 2, 3):
            wait_answer(f"http://127.0.0.1:{public}", f"node={node}")
        return time.perf_counter() - started
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
        time.sleep(0.3)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(url: str, sender_cookie: str, receiver_cookie: str, count: int) -> list[float]:
    """Emit `chat` from one client, time its arrival at another (each pinned by cookie)."""
    sender = NodeClient(url, sender_cookie)
    receiver = NodeClient(url, receiver_cookie)
    out = []
    try:
        for index in range(count):
            text = f"m{index}-{time.monotonic_ns()}"
            started = time.perf_counter()
            sender.ws.send_text("42" + json.dumps(["chat", {"text": text}]))
            receiver.ws.sock.settimeout(5)
            while True:
                packet = receiver._next()
                if packet.startswith("42") and text in packet:
                    break
            out.append(time.perf_counter() - started)
            # drain the sender's own copy of the broadcast
            sender.ws.sock.settimeout(5)
            while True:
                packet = sender._next()
                if packet.startswith("42") and text in packet:
                    break
    finally:
        sender.close()
        receiver.close()
    return out


def throughput(url: str, clients: int, messages: int, nodes: int) -> float:
    """Messages/s delivered to `clients` connected clients: one sender broadcasts `messages`."""
    conns = [NodeClient(url, f"devstack_node={(i % nodes) + 1}" if nodes > 1 else "") for i in range(clients)]
    sel = selectors.DefaultSelector()
    counts = [0] * clients
    for index, conn in enumerate(conns):
        conn.ws.sock.setblocking(False)
        sel.register(conn.ws.sock, selectors.EVENT_READ, index)
    sender = NodeClient(url, "devstack_node=1" if nodes > 1 else "")
    done = threading.Event()
    total = clients * messages

    def reader() -> None:
        got = 0
        buffers = [b""] * clients
        while got < total:
            for key, _ in sel.select(timeout=10):
                index = key.data
                try:
                    data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                buffers[index] += data
                seen = buffers[index].count(b'42["chat"')
                if seen:
                    counts[index] += seen
                    got += seen
                    buffers[index] = buffers[index][buffers[index].rfind(b'42["chat"') + 9 :]
            if not sel.get_map():
                break
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    started = time.perf_counter()
    thread.start()
    for index in range(messages):
        sender.ws.send_text("42" + json.dumps(["chat", {"text": f"t{index}"}]))
    done.wait(timeout=120)
    took = time.perf_counter() - started
    delivered = sum(counts)
    sender.ws.sock.settimeout(1)
    for conn in conns:
        conn.ws.sock.setblocking(True)
        conn.close()
    sender.close()
    return delivered / took


ORIGINAL: dict[Path, str] = {}


def edit_to_every_node(project: Project, edits: int) -> list[float]:
    app = project.root / "app.py"
    text = ORIGINAL.setdefault(app, app.read_text())
    out = []
    for index in range(edits):
        marker = f"v{index}-{time.monotonic_ns()}"
        app.write_text(text.replace('"pid": str(os.getpid())', f'"pid": str(os.getpid()), "v": "{marker}"'))
        started = time.perf_counter()
        pending = set(range(1, project.nodes + 1))
        deadline = time.monotonic() + 20
        while pending and time.monotonic() < deadline:
            for node in list(pending):
                try:
                    resp = probes.http_get(
                        project.url + "/node", timeout=2, headers={"Cookie": f"devstack_node={node}"}
                    )
                except OSError:
                    continue
                if resp.status == 200 and marker.encode() in resp.body:
                    pending.discard(node)
            time.sleep(0.002)
        out.append(time.perf_counter() - started if not pending else float("inf"))
        time.sleep(0.5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--messages", type=int, default=300, help="emits timed for the latency rows")
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--broadcasts", type=int, default=20, help="broadcasts to every client (throughput)")
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--parts", default="up,live", help="up (the ready times), live (the rest), or both")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    base = Path(tempfile.mkdtemp(prefix="bench-nodes-"))
    rows: list[tuple[str, str, str, str]] = []
    try:
        # up -> ready: 1 node, 3 nodes, by hand, interleaved.
        one: list[float] = []
        three: list[float] = []
        hand: list[float] = []
        for _ in range(args.starts if "up" in parts else 0):
            for nodes, into in ((1, one), (3, three)):
                project = Project(base, nodes)
                try:
                    into.append(project.up())
                finally:
                    project.down()
            hand.append(by_hand_ready(base))
        if "up" in parts:
            m1, m3, mh = statistics.median(one), statistics.median(three), statistics.median(hand)
            rows.append(("up -> ready, 1 node (p50)", f"{m1:.2f} s", "", ""))
            rows.append(("up -> ready, 3 nodes (p50)", f"{m3:.2f} s", f"{m3 / m1:.2f} x 1 node", "<= 1.5 x"))
            rows.append(("3 gunicorns + redis + nginx by hand (p50)", f"{mh:.2f} s", f"{m3 / mh:.2f} x", ""))
        if "live" not in parts:
            print_table(rows)
            return

        # Emit latency: within one node (no queue) vs across nodes through Redis.
        single = Project(base, 1, threads=400)
        multi = Project(base, 3, threads=400)
        single.up()
        multi.up()
        try:
            within = latencies(single.url, "", "", args.messages)
            across = latencies(multi.url, "devstack_node=1", "devstack_node=2", args.messages)
            w50, w99 = pct(within, 0.5) * 1000, pct(within, 0.99) * 1000
            a50, a99 = pct(across, 0.5) * 1000, pct(across, 0.99) * 1000
            rows.append(
                (
                    "emit -> client, same node (1 node, no queue)",
                    f"p50 {w50:.2f} ms, p99 {w99:.2f} ms",
                    "",
                    "",
                )
            )
            rows.append(
                (
                    "emit -> client on another node, via Redis",
                    f"p50 {a50:.2f} ms, p99 {a99:.2f} ms",
                    f"{a50 / w50:.2f} x same node (p50)",
                    "p50 <= 5 ms",
                )
            )
            direct = f"http://127.0.0.1:{single.app_port}"
            straight = throughput(direct, args.clients, args.broadcasts, 1)
            spread = throughput(multi.url, args.clients, args.broadcasts, 3)
            rows.append(
                (f"messages/s to {args.clients} clients, one gunicorn straight", f"{straight:,.0f}", "", "")
            )
            rows.append(
                (
                    f"messages/s to {args.clients} clients, 3 nodes through nginx",
                    f"{spread:,.0f}",
                    f"{spread / straight:.2f} x one gunicorn",
                    "",
                )
            )
            one_edit: list[float] = []
            three_edit: list[float] = []
            for _ in range(args.edits):  # interleaved: a busy machine hurts both alike
                one_edit += edit_to_every_node(single, 1)
                three_edit += edit_to_every_node(multi, 1)
            o50, t50 = statistics.median(one_edit), statistics.median(three_edit)
            rows.append(("code edit -> the node serves it, 1 node (p50)", f"{o50:.3f} s", "", ""))
            rows.append(
                (
                    "code edit -> every node serves it, 3 nodes, rolling (p50)",
                    f"{t50:.3f} s",
                    f"{t50 / o50:.2f} x 1 node",
                    "<= 0.3 s",
                )
            )
        finally:
            single.down()
            multi.down()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print_table(rows)


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in [("measure", "result", "ratio", "goal"), *rows]) for i in range(4)]
    for row in [("measure", "result", "ratio", "goal"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
