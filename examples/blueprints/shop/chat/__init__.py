"""The chat blueprint: its files at /chat/static/ (url_prefix + the static folder's name)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("chat", __name__, static_folder="static", template_folder="templates", url_prefix="/chat")


@bp.route("/")
def room() -> str:
    return render_template("chat/room.html")
