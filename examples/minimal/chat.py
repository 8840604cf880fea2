"""A single-module Flask-SocketIO app without a static folder."""

from __future__ import annotations

import os

from flask import Flask
from flask_socketio import SocketIO, emit

app = Flask(__name__, static_folder=None)
socketio = SocketIO(app, async_mode=os.environ.get("DEVSTACK_ASYNC_MODE", "threading"))

MESSAGE = "minimal app"


@app.route("/")
def index() -> str:
    return f"<!doctype html><title>{MESSAGE}</title><p>{MESSAGE}</p>"


@socketio.on("echo")
def on_echo(data):  # type: ignore[no-untyped-def]
    emit("echo", data)
