"""Hostile input (issue 29): every bad value is one line naming the file and the key, nothing is
lost, nothing harmful is accepted — through the real CLI, a running stack and real nginx.

- bad devstack.toml / .env values: `up` says one line, starts nothing; `status`, `logs` and
  `down` still work on a config that broke while the stack ran;
- saved while running: a hostile static.url/static.dir changes nothing live (nginx.conf, answers);
- static folders that would expose the project are refused; static at the site root (the
  project folder itself) never serves .env, devstack.toml, .devstack/, .git/ or code from disk;
- a Host the stack is not reached by (DNS rebinding) gets no answer, nor a Socket.IO session;
- the freshness watcher survives a file name that is not UTF-8;
- a read-only or full project folder is one line, not "internal error".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.faults import SECRET, busy_ports, log_text, notes, raw_get, serving
from tests.support.stack import Project, processes_under, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def said(project: Project, text: str, timeout: float = 20) -> bool:
    return wait_for(lambda: any(text in line for line in notes(project, "devstack")), timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line, an expected error: returned for more checks."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("devstack: error: "), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    return lines[0]


# -- bad values: one line each, nothing started -------------------------------------------------

BIG = "x" * (100 * 1024)  # over the 64 KiB a variable may hold, under the kernel's 128 KiB


def _raw(text: str) -> Callable[[Project], None]:
    def write(project: Project) -> None:
        project.config_path.write_text(project.config_path.read_text() + text, encoding="utf-8")

    return write


def _dotenv(data: bytes) -> Callable[[Project], None]:
    def write(project: Project) -> None:
        (project.root / ".env").write_bytes(data)

    return write


def _folder(name: str, static: str, *inside: str) -> Callable[[Project], None]:
    def write(project: Project) -> None:
        folder = project.root / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in inside:
            (folder / file).write_text(f"{SECRET}\n")
        project.write_config(static=static)

    return write


def _static(line: str) -> Callable[[Project], None]:
    def write(project: Project) -> None:
        project.write_config(static=line)

    return write


def _server(line: str) -> Callable[[Project], None]:
    def write(project: Project) -> None:
        project.write_config(server=line)

    return write


def _listen_newline(project: Project) -> None:
    text = project.config_path.read_text()
    project.config_path.write_text(text.replace(f':{project.public_port}"', f':{project.public_port}\\n"'))


# (id, how the project is spoiled, the file named, the key named)
BAD: list[tuple[str, Callable[[Project], None], str, str]] = [
    ("toml-500-deep", _raw("[doctor]\nignore = " + "[" * 500 + "]" * 500 + "\n"), "devstack.toml", "nested"),
    ("toml-20-deep", _raw("[doctor]\nignore = " + "[" * 20 + "]" * 20 + "\n"), "devstack.toml", "nested"),
    ("toml-2MiB", _raw("# " + "x" * (2 * 1024 * 1024) + "\n"), "devstack.toml", "larger than"),
    ("env-nul-value", _raw('[app.env]\nX = "a\\u0000b"\n'), "devstack.toml", "app.env.X"),
    ("env-nul-name", _raw('[app.env]\n"A\\u0000B" = "1"\n'), "devstack.toml", "NUL"),
    ("env-name-equals", _raw('[app.env]\n"A=B" = "1"\n'), "devstack.toml", "app.env.A=B"),
    ("env-100KiB", _raw(f'[app.env]\nBIG = "{BIG}"\n'), "devstack.toml", "app.env.BIG"),
    ("dotenv-100KiB", _dotenv(f"BIG={BIG}\n".encode()), ".env", "BIG"),
    ("dotenv-nul", _dotenv(b"TOKEN=ab\x00cd\n"), ".env", "TOKEN"),
    ("proc-name-newline", _raw('[processes]\n"css\\n" = "sleep 1"\n'), "devstack.toml", "processes.css"),
    ("proc-name-escape", _raw('[processes]\n"\\u001b[31mred" = "sleep 1"\n'), "devstack.toml", "processes."),
    ("static-dir-slash", _static('dir = "/"'), "devstack.toml", "static.dir"),
    ("static-dir-dot", _static('dir = "."'), "devstack.toml", "static.dir"),
    ("static-dir-dotdot", _static('dir = ".."'), "devstack.toml", "static.dir"),
    ("static-dir-project-by-name", _static('dir = "../chat"'), "devstack.toml", "static.dir"),
    ("static-dir-holds-env", _folder("pub", 'dir = "pub"', ".env"), "devstack.toml", "static.dir"),
    ("static-dir-holds-git", _folder("pub", 'dir = "pub"', ".git"), "devstack.toml", "static.dir"),
    ("static-dir-newline", _folder("a\nb", 'dir = "a\\nb"'), "devstack.toml", "static.dir"),
    ("static-url-tab-braces", _static('url = "/x/\\t{ alias /; }"'), "devstack.toml", "static.url"),
    ("static-url-root-dotdot", _static('dir = ".."\nurl = "/"'), "devstack.toml", "static.dir"),
    (
        "extra-dir-project",
        _raw('[[static.extra]]\nurl = "/bp/static/"\ndir = "."\n'),
        "devstack.toml",
        "static.extra[0].dir",
    ),
    ("hosts-syntax", _server('hosts = ["evil; } server { listen 1;"]'), "devstack.toml", "server.hosts[0]"),
    ("hosts-any", _server('hosts = ["*"]'), "devstack.toml", "server.hosts[0]"),
    ("listen-newline", _listen_newline, "devstack.toml", "server.listen"),
    ("vm-box-nul", _raw('[vm]\nbox = "a\\u0000"\n'), "devstack.toml", "vm.box"),
]


@pytest.mark.parametrize(("spoil", "file", "key"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_starts_nothing(
    project: Project, spoil: Callable[[Project], None], file: str, key: str
) -> None:
    spoil(project)
    line = one_error_line(project.cli("up", timeout=60))
    assert file in line and key in line and " — " in line, line
    assert not processes_under(project.root)
    assert not busy_ports(project)


def test_down_status_and_logs_work_on_a_config_that_broke_while_running(stack: Project) -> None:
    """The README's promise: `down` works with a broken config (was: internal error:
    RecursionError from status, logs and down alike)."""
    stack.config_path.write_text(
        stack.config_path.read_text() + "[doctor]\nignore = " + "[" * 500 + "]" * 500 + "\n"
    )
    assert said(stack, "cannot be used")  # the live re-plan refused it too, in one line
    line = next(ln for ln in notes(stack, "devstack") if "cannot be used" in ln)
    assert "nested deeper than" in line and "keeps running" in line, line
    assert serving(stack)
    for args in (("status",), ("logs",)):
        result = stack.cli(*args)
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert "nested deeper than" in result.stderr, (args, result.stderr)
    down = stack.cli("down")
    assert down.returncode == 0, down.stderr
    assert "stopping anyway" in down.stderr and "stopped" in down.stderr
    assert "internal error" not in down.stderr
    assert wait_for(lambda: not processes_under(stack.root), timeout=10)
    assert not busy_ports(stack)


# -- saved while the stack runs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "static",
    [
        'url = "/x/\\t{ alias /; }"',  # the review's case: a location with alias / appeared
        'url = "/x/ { alias /; } location /y/"',
        'dir = "/"\nurl = "/x/"',
        'dir = ".."\nurl = "/x/"',
    ],
    ids=["tab-braces", "braces", "dir-slash", "dir-dotdot"],
)
def test_a_hostile_save_while_running_changes_nothing(stack: Project, static: str) -> None:
    conf = (stack.state_dir / "nginx.conf").read_text()
    stack.write_config(static=static)
    assert said(stack, "cannot be used")
    line = next(ln for ln in notes(stack, "devstack") if "cannot be used" in ln)
    assert "static." in line and "keeps running with the previous settings" in line, line
    assert (stack.state_dir / "nginx.conf").read_text() == conf
    assert "alias /;" not in conf
    for path in ("/x/etc/passwd", "/y/etc/passwd", "/x/../etc/passwd", "/etc/passwd"):
        status, body, _ = raw_get(stack.public_port, path)
        assert b"root:" not in body, (path, status)
    assert raw_get(stack.public_port, "/static/css/app.css")[0] == 200
    assert stack.state()["status"] == "ready"


def test_a_dot_file_planted_in_a_static_folder_later_is_not_served(stack: Project) -> None:
    """The load-time check sees the folder as it was; a .env or .git/ added while the stack runs
    (or deeper down) is refused by nginx itself."""
    static = stack.root / "static"
    for rel in (".env", "css/.env", ".git/config", "css/.hidden/x.css"):
        (static / rel).parent.mkdir(parents=True, exist_ok=True)
        (static / rel).write_text(f"{SECRET}\n")
        for url in (f"/static/{rel}", "/static/" + rel.replace(".", "%2e"), f"/static/css/../{rel}"):
            status, body, _ = raw_get(stack.public_port, url)
            assert SECRET.encode() not in body and status == 404, (url, status)
    assert raw_get(stack.public_port, "/static/css/app.css")[0] == 200
    assert "STALE" not in log_text(stack, "watcher")  # not watched as a served file either


# -- static at the site root: the project folder itself -----------------------------------------

ROOT_APP = """\
from flask import Flask

app = Flask(__name__, static_folder=None)  # nginx serves the files: the app serves none


@app.route("/")
def index() -> str:
    return "<!doctype html><title>root</title><p>from the app</p>"
"""

PRIVATE = [
    ".env",
    ".flaskenv",
    "devstack.toml",
    "pyproject.toml",
    "app.py",
    "settings.py",
    "settings.cfg",
    "setup.cfg",
    "app.ini",
    "poetry.lock",
    "data.db",
    "data.sqlite3",
    "debug.log",
    "Procfile",
    ".git/config",
    ".devstack/state.json",
    "sub/.secret",
    "sub/.hidden/x.txt",
    "pkg/__pycache__/mod.cpython-312.pyc",
    "pkg/mod.py",
]


def test_static_at_the_site_root_never_serves_the_projects_files(project: Project) -> None:
    root = project.root
    (root / "app.py").write_text(ROOT_APP)
    for rel in PRIVATE:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel in (".env", ".flaskenv"):
            path.write_text(f"SECRET_KEY={SECRET}\n")
        elif rel in ("Procfile", "debug.log", "settings.cfg", "setup.cfg", "app.ini"):
            path.write_text(f"# {SECRET} {rel}\n")
        elif rel not in ("devstack.toml", "app.py", ".devstack/state.json"):
            path.write_text(f"{SECRET} {rel}\n")
    (root / "hello.txt").write_text("hello from disk\n")
    project.write_config(static='dir = "."\nurl = "/"')
    project.up_detached()
    (root / ".devstack" / "planted.txt").write_text(f"{SECRET}\n")

    assert raw_get(project.public_port, "/hello.txt")[:2] == (200, b"hello from disk\n")
    assert raw_get(project.public_port, "/static/css/app.css")[0] == 200  # a file in a folder
    served = []
    for rel in [*PRIVATE, ".devstack/planted.txt", ".devstack/nginx.conf", ".devstack/logs/gunicorn.log"]:
        disk = (root / rel).read_bytes() if (root / rel).is_file() else b"\0never"
        variants = {f"/{rel}", f"/{rel.upper()}", "/" + rel.replace(".", "%2e"), f"/./{rel}", f"/x/../{rel}"}
        for url in variants:
            status, body, _ = raw_get(project.public_port, url)
            if SECRET.encode() in body or (status == 200 and body == disk) or b"[app]" in body:
                served.append((url, status))
    assert not served, served


# -- DNS rebinding -----------------------------------------------------------------------------


def raw_request(port: int, request: str) -> bytes:
    """What the server answers to a request sent byte for byte (b"" if it closes unanswered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode("latin-1"))
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    return data


def handshake(port: int, host: str) -> bytes:
    return raw_request(
        port,
        f"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {host}\r\n"
        f"Origin: http://{host}\r\nConnection: close\r\n\r\n",
    )


def test_a_rebinding_host_gets_no_answer_and_no_socketio_session(project: Project) -> None:
    project.write_config(server='hosts = ["devbox.lan"]')
    project.up_detached()
    port = project.public_port
    own = handshake(port, f"127.0.0.1:{port}")
    assert own.startswith(b"HTTP/1.1 200") and b'"sid"' in own, own[:300]  # the probe works
    assert handshake(port, f"localhost:{port}").startswith(b"HTTP/1.1 200")
    assert handshake(port, f"app.localhost:{port}").startswith(b"HTTP/1.1 200")  # RFC 6761
    assert handshake(port, f"devbox.lan:{port}").startswith(b"HTTP/1.1 200")  # server.hosts
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "localhost.evil"):
        answer = handshake(port, host)
        assert answer == b"", (host, answer[:300])  # 444: closed without a byte
        page = raw_request(port, f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        assert page == b"", (host, page[:300])
    # No Host at all (HTTP/1.0) is not the stack's either.
    assert raw_request(port, "GET / HTTP/1.0\r\n\r\n") == b""
    # doctor: the stack passes; gunicorn itself, which answers any Host, is flagged.
    result = project.cli("doctor", "net.any-host")
    passed = "✓ net.any-host a request with Host: rebind.devstack-doctor.invalid:"
    assert passed in result.stdout, result.stdout
    assert "answers any Host" not in result.stdout, result.stdout
    app = project.cli(
        "doctor",
        "net.any-host",
        "--url",
        f"http://127.0.0.1:{project.app_port}",
        "--app-url",
        f"http://127.0.0.1:{project.app_port}",
    )
    assert "answers any Host" in app.stdout and "rebind.devstack-doctor.invalid" in app.stdout, app.stdout


# -- file names the watcher cannot decode --------------------------------------------------------


def test_the_freshness_watcher_survives_a_name_that_is_not_utf8(stack: Project) -> None:
    static = os.fsencode(stack.root / "static")
    with open(static + b"/bad\xff\xfe.css", "wb") as handle:
        handle.write(b"body{}\n")
    assert wait_for(lambda: "fresh  bad\ufffd\ufffd.css" in log_text(stack, "watcher"), timeout=15), log_text(
        stack, "watcher"
    )
    (stack.root / "static" / "after.css").write_text("p{color:red}\n")
    assert wait_for(lambda: "fresh  after.css" in log_text(stack, "watcher"), timeout=15), log_text(
        stack, "watcher"
    )
    assert "Traceback" not in (stack.state_dir / "logs" / "supervisor.out").read_text(errors="replace")


# -- a project folder devstack cannot write ------------------------------------------------------


@pytest.fixture
def mounted(project: Project) -> Iterator[Callable[[list[str]], None]]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a read-only or full project folder")
    mounts: list[str] = []

    def mount(args: list[str]) -> None:
        subprocess.run(["mount", *args], check=True)
        mounts.append(args[-1])

    yield mount
    for target in reversed(mounts):
        subprocess.run(["umount", "-l", target], check=False)


def test_a_read_only_project_folder_is_one_line(
    project: Project, mounted: Callable[[list[str]], None]
) -> None:
    mounted(["--bind", "-o", "ro", str(project.root), str(project.root)])
    subprocess.run(["mount", "-o", "remount,ro,bind", str(project.root)], check=True)
    for args in (("up",), ("up", "--detach")):
        line = one_error_line(project.cli(*args))
        assert f"cannot write {project.state_dir}" in line and "writable" in line, line
    assert not processes_under(project.root)
    for args in (("status",), ("logs",), ("down",)):
        result = project.cli(*args)
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_full_project_folder_is_one_line(
    project: Project, tmp_path: Path, mounted: Callable[[list[str]], None]
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted(["-t", "tmpfs", "-o", "size=256k", "devstack-full", str(small)])
    root = small / "chat"
    shutil.copytree(project.root, root)
    with contextlib.suppress(OSError), open(small / "filler", "wb") as filler:
        while True:
            filler.write(b"x" * 4096)
            filler.flush()
    full = Project(root, project.public_port, project.app_port)
    line = one_error_line(full.cli("up"))
    assert "cannot write" in line and "No space left" in line and "free some space" in line, line
    assert not processes_under(root)
