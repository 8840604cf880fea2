"""A Flask-SocketIO chat over several nodes: `app.nodes = 3` in devstack.toml runs three
single-worker gunicorns behind nginx (sticky by a cookie), and every node relays its emits
through the message queue devstack runs (its URL in $REDIS_URL)."""

from __future__ import annotations

import os

from flask import Flask, render_template
from flask_socketio import SocketIO, emit

app = Flask(__name__)
# The documented scale-out: every node publishes its broadcasts to the queue and relays what the
# others publish to its own clients. Without message_queue, a broadcast reaches only the
# clients of the node that sent it (devstack's readiness says which node lacks it).
socketio = SocketIO(
    app,
    async_mode=os.environ.get("DEVSTACK_ASYNC_MODE", "threading"),
    message_queue=os.environ.get("REDIS_URL"),
)

# Which node this process is: devstack sets DEVSTACK_NODE (1..N) for each gunicorn.
NODE = os.environ.get("DEVSTACK_NODE", "1")


@app.route("/")
def index() -> str:
    return render_template("index.html", node=NODE)


@app.route("/node")
def node() -> dict[str, str]:
    return {"node": NODE, "pid": str(os.getpid())}


@socketio.on("chat")
def on_chat(data):  # type: ignore[no-untyped-def]
    # broadcast=True: every client of every node, through the queue.
    emit("chat", {"text": str(data.get("text", ""))[:500], "node": NODE}, broadcast=True)
