"""The admin blueprint: static_url_path="/assets", registered under /admin: /admin/assets/."""

from __future__ import annotations

from flask import Blueprint

admin = Blueprint("admin", __name__, static_folder="assets", static_url_path="/assets")


@admin.route("/")
def dashboard() -> str:
    return "admin"
