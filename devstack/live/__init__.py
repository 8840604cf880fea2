"""Live reload: open tabs follow every edit, and each tab proves what it applied.

nginx injects client.js into the app's HTML pages; the tabs talk to a WebSocket server on a
unix socket in the state dir (server.py), which the supervisor runs as a service beside the
watchers. The watchers tell it what changed (hub.py decides what each tab does and writes the
one log line per edit); gunicorn's post_worker_init hook tells it when new code serves.
"""
