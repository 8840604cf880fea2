"""project/asyncmode.py: what the app's source asks of Socket.IO's async mode, read with ast."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.project import asyncmode

pytestmark = pytest.mark.unit


def test_the_classic_app_leaves_the_mode_to_flask_socketio() -> None:
    use = asyncmode.read(
        '"""A chat. Pass async_mode to SocketIO() to choose."""\n'
        "from flask_socketio import SocketIO\n"
        "socketio = SocketIO(app)  # async_mode='threading' one day\n",
        "app.py",
    )
    # Text in a docstring or a comment is no argument: only the call counts.
    assert use.auto and use.explicit is None and use.wants_eventlet is None
    assert [(s.where, s.code) for s in use.servers] == [("app.py:3", "SocketIO(app)")]


@pytest.mark.parametrize(
    ("source", "mode", "where"),
    [
        ("socketio = SocketIO(app, async_mode='eventlet')\n", "eventlet", "app.py:1"),
        (
            "import flask_socketio as fs\n\nsio = fs.SocketIO(\n    app,\n    async_mode='gevent',\n)\n",
            "gevent",
            "app.py:3",
        ),
        (
            "socketio = SocketIO()\n\ndef make():\n    socketio.init_app(app, async_mode='threading')\n",
            "threading",
            "app.py:4",
        ),
    ],
)
def test_a_literal_async_mode_is_read_with_its_line(source: str, mode: str, where: str) -> None:
    use = asyncmode.read(source, "app.py")
    assert use.explicit is not None and (use.explicit[0], use.explicit[1].where) == (mode, where)
    assert not use.auto
    assert (use.wants_eventlet is not None) == (mode == "eventlet")


def test_a_mode_that_is_not_a_literal_is_unknown_not_auto() -> None:
    for source in (
        "socketio = SocketIO(app, async_mode=os.environ.get('MODE'))\n",
        "socketio = SocketIO(app, **OPTIONS)\n",
    ):
        use = asyncmode.read(source, "app.py")
        assert use.dynamic is not None and use.dynamic.line == 1 and not use.auto, source
    # async_mode=None is Flask-SocketIO's default: the auto-detection.
    assert asyncmode.read("s = SocketIO(app, async_mode=None)\n", "app.py").auto


@pytest.mark.parametrize(
    "source",
    [
        "import eventlet\neventlet.monkey_patch()\n",
        "from eventlet import monkey_patch\nmonkey_patch()\n",
        "import eventlet as ev\nev.monkey_patch(thread=False)\n",
    ],
)
def test_eventlet_monkey_patching_is_found(source: str) -> None:
    site = asyncmode.read(source, "app.py").wants_eventlet
    assert site is not None and site.line == 2 and "monkey_patch(" in site.code


@pytest.mark.parametrize(
    "source",
    [
        "from gevent import monkey\nmonkey.patch_all()\n",
        "import gevent.monkey\ngevent.monkey.patch_all()\n",
        "from gevent.monkey import patch_all\npatch_all()\n",
    ],
)
def test_gevent_monkey_patching_is_found(source: str) -> None:
    use = asyncmode.read(source, "app.py")
    assert use.gevent_patch is not None and use.gevent_patch.line == 2 and use.wants_eventlet is None


def test_what_only_python_app_py_runs_is_not_what_gunicorn_runs() -> None:
    use = asyncmode.read(
        "from flask_socketio import SocketIO\n"
        "socketio = SocketIO(app)\n"
        "if __name__ == '__main__':\n"
        "    import eventlet\n"
        "    eventlet.monkey_patch()\n"
        "    socketio.run(app)\n",
        "app.py",
    )
    assert use.auto and use.wants_eventlet is None
    patched = asyncmode.read("import eventlet\nif DEBUG:\n    eventlet.monkey_patch()\n", "app.py")
    assert patched.wants_eventlet is not None  # any other condition may hold under gunicorn


def test_lookalikes_are_not_socketio_or_patching() -> None:
    use = asyncmode.read(
        "db.init_app(app)\n"  # another extension's init_app, with no async_mode
        "monkey_patch()\n"  # not eventlet's
        "socketio.Server(async_mode='eventlet')\n",  # python-socketio's own server: not Flask-SocketIO's
        "app.py",
    )
    assert use == asyncmode.AsyncUse()
    assert asyncmode.read("def broken(:\n", "app.py") == asyncmode.NONE  # gunicorn names a SyntaxError


def test_scan_reads_the_files_gunicorn_imports(tmp_path: Path) -> None:
    package = tmp_path / "src" / "chat"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .extensions import socketio\n")
    (package / "extensions.py").write_text("from flask_socketio import SocketIO\nsocketio = SocketIO()\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("import eventlet\neventlet.monkey_patch()\n")
    (tmp_path / "src" / "run.py").write_text("import eventlet\neventlet.monkey_patch()\n")  # not imported
    use = asyncmode.scan(tmp_path / "src", "chat", tmp_path)
    assert use.auto and [s.where for s in use.servers] == ["src/chat/extensions.py:2"]
    assert use.wants_eventlet is None
    (tmp_path / "src" / "chat.py").unlink(missing_ok=True)
    single = tmp_path / "app.py"
    single.write_text("socketio = SocketIO(app, async_mode='gevent')\n")
    assert asyncmode.scan(tmp_path, "app").modes[0][1].where == "app.py:1"
    assert asyncmode.scan(tmp_path, "missing") == asyncmode.NONE
