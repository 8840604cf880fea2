"""A shop with two blueprints, each with its own static folder (and one with templates)."""

from __future__ import annotations

import os

from flask import Flask, render_template
from flask_socketio import SocketIO

socketio = SocketIO()


def create_app() -> Flask:
    app = Flask(__name__)
    socketio.init_app(app, async_mode=os.environ.get("DEVSTACK_ASYNC_MODE", "threading"))

    from shop.admin import admin
    from shop.chat import bp as chat_bp

    app.register_blueprint(chat_bp)
    app.register_blueprint(admin, url_prefix="/admin")

    @app.route("/")
    def index() -> str:
        return render_template("index.html")

    return app
