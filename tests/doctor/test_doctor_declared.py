"""Pure logic (issue #26): where nginx routes the Socket.IO path, the gunicorn a project declares
(Procfile, systemd continuation lines, compose strings / folded blocks / lists, gunicorn.conf.py
merged under the command line), and the client's own Socket.IO path."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.doctor import declared, nginxconf
from devstack.doctor.context import SIO_PATH

pytestmark = pytest.mark.unit


def _server(body: str) -> nginxconf.Directive:
    root = nginxconf.parse_text({"/n.conf": f"http {{ server {{ listen 80; {body} }} }}"}, "/n.conf")
    http = root.child("http")
    assert http is not None
    server = http.child("server")
    assert server is not None
    return server


def test_route_names_what_answers_instead_of_the_app() -> None:
    spa = _server(
        "location / { root /s; try_files $uri $uri/ /index.html; } location /api/ { proxy_pass http://a; }"
    )
    found = nginxconf.route(spa, "/socket.io/")
    assert found.proxy is None and found.location is not None and found.location.args == ["/"]
    assert found.what == "try_files falls back to /index.html (a page, not the app)"
    ret = _server("location / { proxy_pass http://a; } location /socket.io { return 404; }")
    assert nginxconf.route(ret, "/socket.io/").what == "`return 404` answers it"
    alias = _server("location /s { alias /srv/s/; }")
    assert "alias maps it to the file /srv/s/ocket.io/" in nginxconf.route(alias, "/socket.io/").what
    nothing = _server("location /api/ { proxy_pass http://a; }")
    assert nginxconf.route(nothing, "/socket.io/").what.startswith("no location passes it on")
    named = _server("location / { try_files $uri @app; } location @app { proxy_pass http://a; }")
    assert nginxconf.route(named, "/socket.io/").proxy is not None
    uwsgi = _server("location / { uwsgi_pass 127.0.0.1:9000; }")
    assert nginxconf.route(uwsgi, "/socket.io/").proxy is not None


def test_declared_commands_and_config_merge(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("worker: rq worker\nweb: gunicorn -k eventlet -w 1 app:app\n")
    (tmp_path / "systemd").mkdir()
    (tmp_path / "systemd" / "app.service").write_text(
        "[Service]\n# ExecStart=/bin/gunicorn -w 9 x:y\nExecStart=-/srv/venv/bin/gunicorn \\\n  -w3 app:app\n"
    )
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    command: >\n      gunicorn --reload\n      -b :8000 app:app\n"
        '  api:\n    command: ["python", "-m", "gunicorn", "--workers=2", "app:app"]\n'
        "  db:\n    command: postgres\n"
    )
    (tmp_path / "gunicorn.conf.py").write_text(
        "import os\nworkers = 4\nworker_class = 'gthread'\nthreads = os.cpu_count()\n"
    )
    found = {(d.kind, d.command.where): d for d in declared.find(tmp_path)}
    assert set(found) == {
        ("Procfile", "Procfile:2"),
        ("systemd", "systemd/app.service:3"),
        ("compose", "compose.yaml:3"),
        ("compose", "compose.yaml:7"),
    }
    web = found[("Procfile", "Procfile:2")]
    assert web.worker_class == "eventlet" and web.workers == 1  # the command line wins over the file
    assert web.sites["worker_class"].text == "-k eventlet" and web.sites["workers"].where == "Procfile:2"
    unit = found[("systemd", "systemd/app.service:3")]
    assert unit.workers == 3 and unit.sites["workers"].text == "-w3" and unit.worker_class == "gthread"
    assert unit.sites["worker_class"].where == "gunicorn.conf.py:3"  # from the config file
    folded = found[("compose", "compose.yaml:3")]
    assert folded.settings["reload"] == "true" and folded.workers == 4
    assert folded.sites["workers"].text == "workers = 4"
    listed = found[("compose", "compose.yaml:7")]
    assert listed.sites["workers"].text == "--workers=2"


def test_config_file_alone_and_socketio_use(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text('bind = "0.0.0.0:5000"\nworkers = 2\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("x = 1\nfrom flask_socketio import SocketIO\n")
    (tmp_path / "pkg" / "ext.py").write_text("socketio = SocketIO(message_queue='redis://')\n")
    only = declared.find(tmp_path)
    assert [(d.kind, d.command.where, d.worker_class) for d in only] == [
        ("config file", "gunicorn.conf.py:1", "sync")
    ]
    assert declared.socketio_use(tmp_path) == ("pkg/__init__.py:2", "pkg/ext.py:1")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "x.py").write_text("import socketio\n")  # a venv is not the app
    assert declared.socketio_use(tmp_path)[0] == "pkg/__init__.py:2"


def test_the_clients_own_socketio_path() -> None:
    page = "<script>const s = io('/', { path: '/chat/socket.io', transports: ['websocket'] });</script>"
    found = SIO_PATH.search(page)
    assert found is not None and found.group(1) == "/chat/socket.io"
    assert SIO_PATH.search("<script>const s = io();</script>") is None
    assert SIO_PATH.search("radio({path: '/x'})") is None
