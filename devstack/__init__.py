"""devstack: a correct local Nginx + Gunicorn + Flask-SocketIO stack in one command."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# The gunicorn config file every planned gunicorn is given (it runs in the app's interpreter and
# imports nothing of devstack's).
GUNICORN_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gunicorn_conf.py")
