"""The gunicorn config devstack passes with -c: makes a code reload cost only the app's own import.

The master imports the stack's third-party libraries once; every worker forked after a change
inherits them and re-imports only the user's modules (never preloaded, so edits always show).
Measured here: a gthread reload 0.20 s -> 0.04 s, a gevent one 0.30 s -> 0.02 s.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys


def _die_with_devstack() -> None:
    """Linux: SIGTERM from the kernel when devstack dies, even by kill -9, as the shim in
    procs/child.py asks for every other child (here without the shim's extra interpreter start,
    on the path to "ready"). The parent check closes the race where devstack died before this
    ran: gunicorn then exits instead of running on as an orphan."""
    parent = os.environ.get("DEVSTACK_SUPERVISOR_PID", "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        os._exit(70)


def _through_the_gate() -> None:
    """A gated gunicorn (speed/headstart.py) was started with no settings but this file: wait
    for devstack's plan on the pipe, then take its environment and its command line's settings
    as this file's, the way gunicorn applies a command line. An empty pipe: devstack starts
    gunicorn the usual way instead, this one exits. A HUP re-reads this file: the same again."""
    fd = os.environ.pop("DEVSTACK_GATE", None)
    if fd is not None and fd.isdigit():
        chunks = []
        while chunk := os.read(int(fd), 65536):
            chunks.append(chunk)
        os.close(int(fd))
        if not chunks:
            os._exit(0)
        import json

        from gunicorn.config import Config

        message = json.loads(b"".join(chunks))
        for name in [n for n in os.environ if n not in message["env"]]:
            del os.environ[name]
        os.environ.update(message["env"])
        # The two start-up variables a running interpreter can still honour (headstart.py
        # lets a plan differ in these only): both are read at every import.
        sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
        prefix = os.environ.get("PYTHONPYCACHEPREFIX")
        sys.pycache_prefix = os.path.abspath(prefix) if prefix else None
        parsed = Config().parser().parse_args(message["argv"][3:])  # after `python -m gunicorn`
        settings = {k: v for k, v in vars(parsed).items() if v is not None and k not in ("args", "config")}
        if parsed.args:
            settings["wsgi_app"] = settings["default_proc_name"] = parsed.args[0]
        sys._devstack_gate = settings  # type: ignore[attr-defined]  # kept for a HUP's re-read
    globals().update(getattr(sys, "_devstack_gate", {}))


_die_with_devstack()
_through_the_gate()

# An app that names no async_mode gets the first of eventlet, gevent, threading that imports
# (python-engineio's Server). Under a worker that cannot run it (eventlet under gthread: every
# WebSocket fails) those drivers are made unimportable for python-engineio alone, here in the
# master before any worker forks: the app's own code runs unedited, and may still import
# eventlet itself. plan.UNFIT_MODES is the same table; plan.build says it in one line.
for _mode in {"gthread": ("eventlet", "gevent", "gevent_uwsgi"), "gevent": ("eventlet",)}.get(
    os.environ.get("DEVSTACK_WORKER", ""), ()
):
    for _driver in (f"engineio.async_drivers.{_mode}", f"engineio.async_{_mode}"):  # 3.0+, and older
        sys.modules.setdefault(_driver, None)  # type: ignore[arg-type]

if os.environ.get("DEVSTACK_WORKER") == "gevent":
    # Patch in the master before anything imports ssl/threading, as gevent asks; the workers
    # patch again after fork (a no-op then), and nothing is imported unpatched.
    from gevent import monkey

    monkey.patch_all()

# Libraries only: the user's code is never imported in the master.
PREIMPORT: tuple[str, ...] = (
    "flask",
    "werkzeug",
    "jinja2",
    "flask_socketio",
    "socketio",
    "engineio",
    "simple_websocket",
)
# Several nodes (app.nodes > 1, DEVSTACK_NODE set): the message queue's client too, which every
# node's worker would otherwise import again on each reload.
if os.environ.get("DEVSTACK_NODE"):
    PREIMPORT += ("redis", "socketio.redis_manager")


def on_starting(server: object) -> None:
    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except Exception:  # an optional library missing or broken: the worker will say so
            continue


def post_worker_init(worker: object) -> None:
    """The worker imported the app and is about to accept: tell devstack's live-reload server,
    which reloads the open tabs only now (never onto a 502 or the old code)."""
    target = os.environ.get("DEVSTACK_LIVE_NOTIFY")
    if not target:
        return
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # The node (app.nodes > 1): a rolling reload goes on to the next one, and the tabs
            # reload once every node serves the new code.
            node = os.environ.get("DEVSTACK_NODE", "0")
            sock.sendto(f"worker-ready {os.getpid()} {node}".encode(), target)
    except OSError:  # devstack not listening (live reload off, or stopping): nothing to tell
        pass


def worker_int(worker: object) -> None:
    """A worker's SIGQUIT (devstack's stop) or SIGINT: gunicorn would now sleep 0.1 s and unwind
    the whole interpreter (0.1 s more, and until graceful_timeout while an open websocket holds
    a thread). Exit at once instead, after the app's atexit handlers and a flush: its last lines
    are kept. A reload (gunicorn's reloader calls this too) keeps gunicorn's graceful path; the
    caller's name tells them apart (under gevent every greenlet is a "thread")."""
    if sys._getframe(1).f_code.co_name == "handle_quit":
        # Only the master's quick stop (devstack's stop) QUITs a worker, and devstack KILLs the
        # master once its workers are gone: remove the master's control socket for it.
        with contextlib.suppress(OSError, AttributeError):
            os.unlink(worker.cfg.control_socket)  # type: ignore[attr-defined]
        _exit_now()


def _exit_now() -> None:
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # devstack's end of the pipe gone: nothing to keep
            stream.flush()
    os._exit(0)
