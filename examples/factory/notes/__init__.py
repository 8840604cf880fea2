"""The notes app: an application factory, as in the Flask tutorial."""

from __future__ import annotations

import os

import humanize
from flask import Flask, render_template
from flask_socketio import SocketIO, emit

socketio = SocketIO()

CREATED = 90  # seconds ago, shown with the app's own requirement


def create_app() -> Flask:
    app = Flask(__name__)
    # Explicit async_mode: left unset, Flask-SocketIO picks eventlet whenever it is importable.
    socketio.init_app(app, async_mode=os.environ.get("DEVSTACK_ASYNC_MODE", "threading"))

    @app.route("/")
    def index() -> str:
        title = os.environ.get("NOTES_TITLE", "Notes")
        return render_template("index.html", title=title, ago=humanize.naturaldelta(CREATED))

    @app.route("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@socketio.on("echo")
def on_echo(data):  # type: ignore[no-untyped-def]
    emit("echo", data)
