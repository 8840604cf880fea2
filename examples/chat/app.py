"""A small Flask-SocketIO chat: the example devstack runs with `devstack up`."""

from __future__ import annotations

import os

from flask import Flask, redirect, render_template, url_for
from flask_socketio import SocketIO, emit

app = Flask(__name__)
# devstack sets DEVSTACK_ASYNC_MODE from the configured worker (gthread -> threading, gevent).
# Set async_mode explicitly: left unset, Flask-SocketIO picks eventlet whenever it is importable.
socketio = SocketIO(app, async_mode=os.environ.get("DEVSTACK_ASYNC_MODE", "threading"))

GREETING = "Hello from devstack"


@app.route("/")
def index() -> str:
    return render_template("index.html", greeting=GREETING)


@app.route("/go")
def go():  # type: ignore[no-untyped-def]
    # A redirect from the app: behind nginx its Location must carry the public host:port.
    return redirect(url_for("index", _external=True))


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "greeting": GREETING}


@socketio.on("echo")
def on_echo(data):  # type: ignore[no-untyped-def]
    emit("echo", data)


@socketio.on("chat")
def on_chat(data):  # type: ignore[no-untyped-def]
    emit("chat", data, broadcast=True)
