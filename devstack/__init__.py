"""devstack: a correct local Nginx + Gunicorn + Flask-SocketIO stack in one command."""

from __future__ import annotations

__version__ = "0.1.0"
