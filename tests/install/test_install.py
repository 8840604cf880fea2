"""devstack installed the way users install CLI tools, used on a project with its own `.venv`.

The wheel and the sdist are built from this checkout; each is installed into a brand-new venv
with nothing else in it, and the wheel also with pipx and with `uv tool install` (both from the
package index). Every install runs `--version`, `--help`, a usage error, then `devstack init`
and `devstack up --detach` in an app folder whose own `.venv` holds gunicorn, Flask-SocketIO and
a requirement devstack does not have. Nothing here imports the checkout: PYTHONPATH is cleared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import socketio

from devstack import __version__
from devstack.stack import probes
from tests.support.stack import EXAMPLE, REPO, free_ports, kill_leftovers, processes_under

pytestmark = [pytest.mark.install, pytest.mark.needs_nginx]

APP_REQUIREMENTS = "flask>=3\nflask-socketio>=5.3\ngunicorn>=23\nsimple-websocket>=1.0\nhumanize>=4\n"
APP_ROUTE = """

@app.route("/ago")
def ago() -> str:
    import humanize  # the app's own requirement: only its .venv has it

    return humanize.naturaldelta(60)
"""


def clean_env(**extra: str) -> dict[str, str]:
    """A user's shell: no PYTHONPATH into this checkout, no active venv."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "FORCE_COLOR", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run(
    argv: list[str | Path], cwd: Path | None = None, timeout: float = 600, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "devstack"
    # Build from what a commit would hold (tracked and new files; nothing ignored: no .venv, no caches).
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in files.decode().split("\0"):
        if name and (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, src])
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pipx and uv, from the package index, in a venv of their own."""
    venv = tmp_path_factory.mktemp("tools") / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", "-q", "pipx", "uv"])
    return venv / "bin"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project with its own .venv and requirements.txt, no devstack.toml yet."""
    root = tmp_path_factory.mktemp("project") / "myapp"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__", "devstack.toml"))
    (root / "requirements.txt").write_text(APP_REQUIREMENTS, encoding="utf-8")
    with open(root / "app.py", "a", encoding="utf-8") as handle:
        handle.write(APP_ROUTE)
    run([sys.executable, "-m", "venv", root / ".venv"])
    run([root / ".venv" / "bin" / "pip", "install", "-q", "-r", root / "requirements.txt"])
    yield root
    kill_leftovers(root)


def install(how: str, dists: dict[str, Path], tools: Path, base: Path) -> Path:
    """Install devstack one way; return the path of its `devstack` command."""
    if how in ("wheel", "sdist"):
        venv = base / "venv"
        run([sys.executable, "-m", "venv", venv])
        run([venv / "bin" / "pip", "install", "-q", dists[how]])
        return venv / "bin" / "devstack"
    if how == "pipx":
        env = {"PIPX_HOME": str(base / "pipx"), "PIPX_BIN_DIR": str(base / "bin")}
        run([tools / "pipx", "install", dists["wheel"]], env={**env, "PIPX_MAN_DIR": str(base / "man")})
        return base / "bin" / "devstack"
    env = {"UV_TOOL_DIR": str(base / "uv"), "UV_TOOL_BIN_DIR": str(base / "bin")}
    run([tools / "uv", "tool", "install", dists["wheel"]], env={**env, "UV_CACHE_DIR": str(base / "cache")})
    return base / "bin" / "devstack"


@pytest.mark.parametrize("how", ["wheel", "sdist", "pipx", "uv"])
def test_installed_devstack_runs_the_projects_own_venv(
    how: str, dists: dict[str, Path], tools: Path, app: Path, tmp_path: Path
) -> None:
    devstack = install(how, dists, tools, tmp_path)
    assert devstack.is_file(), f"{how}: no devstack command at {devstack}"
    assert run([devstack, "--version"]).strip() == f"devstack {__version__}"
    assert "Commands" in run([devstack, "--help"])
    usage = subprocess.run(
        [devstack, "logs", "--no-colr"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and "Usage: devstack logs" in usage.stderr, usage.stderr
    assert "internal error" not in usage.stderr

    (app / "devstack.toml").unlink(missing_ok=True)
    run([devstack, "init"], cwd=app)
    public, private = free_ports(2)
    config = (app / "devstack.toml").read_text(encoding="utf-8")
    config = re.sub(r'listen = "127.0.0.1:5000"', f'listen = "127.0.0.1:{public}"', config)
    config = re.sub(r"app_port = 5001", f"app_port = {private}", config)
    (app / "devstack.toml").write_text(config, encoding="utf-8")
    try:
        out = run([devstack, "up", "--detach"], cwd=app, timeout=120)
        assert "ready" in out, out
        home = probes.http_get(f"http://127.0.0.1:{public}/")
        assert home.status == 200, home.body[:300]
        ago = probes.http_get(f"http://127.0.0.1:{public}/ago")
        assert ago.status == 200 and ago.body == b"a minute", ago.body[:300]
        status = run([devstack, "status"], cwd=app)
        assert f"app python: {app / '.venv' / 'bin' / 'python'} (.venv/ in the project)" in status, status
        # A first up: the .venv's gunicorn was spawned gated at the fork and given the plan.
        state = json.loads((app / ".devstack" / "state.json").read_text())
        gated = json.loads((app / ".devstack" / "gunicorn.gate.json").read_text())
        assert gated["pid"] == state["processes"]["gunicorn"]["pid"], gated
    finally:
        subprocess.run([devstack, "down"], cwd=app, env=clean_env(), capture_output=True, timeout=60)
    assert not processes_under(app), "processes left behind"


# The example corpus, end to end from the clean wheel install: each example's own .venv from its
# requirements.txt, `init` unedited (the two port lines moved to free ones), then up --detach ->
# GET / -> every static folder's edit proven served fresh through nginx -> a template edit shown
# -> a code edit served -> a Socket.IO round trip over websocket through nginx -> doctor exit 0
# -> down, nothing left.
@dataclass(frozen=True)
class Example:
    name: str
    page: tuple[bytes, bytes]  # what GET `code_url` says before and after the code edit
    code: tuple[str, str, str]  # (file, old, new)
    code_url: str = "/"
    static: tuple[tuple[str, str], ...] = ()  # (file under the example, its URL): every static folder
    template: tuple[str, str, str, str] | None = None  # (file, old, new, URL)
    echo: bool = False  # the app answers a Socket.IO "echo" with the same data


CORPUS = [
    Example(
        "chat",
        (b"Hello from devstack", b"Hello, edited"),
        ("app.py", "Hello from devstack", "Hello, edited"),
        static=(("static/css/app.css", "/static/css/app.css"),),
        template=("templates/index.html", "connecting…", "connecting (edited)…", "/"),
        echo=True,
    ),
    Example(
        "factory",
        (b"Notes from .env</h1>", b"an hour ago"),  # .env reached gunicorn; humanize runs
        ("notes/__init__.py", "CREATED = 90", "CREATED = 3600"),
        static=(("notes/static/notes.css", "/static/notes.css"),),
        template=("notes/templates/index.html", "First note written", "The first note was written", "/"),
        echo=True,
    ),
    Example(
        "minimal",
        (b"<p>minimal app</p>", b"<p>edited</p>"),
        ("chat.py", 'MESSAGE = "minimal app"', 'MESSAGE = "edited"'),
        echo=True,
    ),
    # Blueprints with static and template folders of their own (issue 25): every folder served.
    Example(
        "blueprints",
        (b"admin", b"admin, edited"),
        ("shop/admin/__init__.py", 'return "admin"', 'return "admin, edited"'),
        code_url="/admin/",
        static=(
            ("shop/static/site.css", "/static/site.css"),
            ("shop/chat/static/chat.css", "/chat/static/chat.css"),
            ("shop/admin/assets/admin.js", "/admin/assets/admin.js"),
        ),
        template=("shop/chat/templates/chat/room.html", "Chat room</h1>", "Chat room, edited</h1>", "/chat/"),
    ),
    # The classic setup: SocketIO(app), eventlet in the venv, no async_mode (issue 25).
    Example(
        "classic",
        (b"classic app", b"classic, edited"),
        ("app.py", "classic app", "classic, edited"),
        static=(("static/style.css", "/static/style.css"),),
        echo=True,
    ),
]


@pytest.fixture(scope="module")
def wheel_devstack(dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install("wheel", dists, Path(), tmp_path_factory.mktemp("wheel-tool"))


def wait_body(url: str, wanted: bytes, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    body = b""
    while time.monotonic() < deadline:
        resp = probes.http_get(url)
        body = resp.body
        if resp.status == 200 and wanted in body:
            return body
        time.sleep(0.1)
    return body


def socketio_round_trip(url: str, echo: bool) -> None:
    """Connect over websocket through nginx (the connect is acked by the app); with an echo
    handler, an emit comes back."""
    client = socketio.Client(reconnection=False)
    received: list[object] = []
    client.on("echo", received.append)
    client.connect(url, transports=["websocket"], wait_timeout=10)
    try:
        assert client.transport() == "websocket"
        if echo:
            client.emit("echo", {"round": "trip"})
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert received == [{"round": "trip"}]
    finally:
        client.disconnect()


@pytest.mark.parametrize("example", CORPUS, ids=[e.name for e in CORPUS])
def test_example_corpus_end_to_end(example: Example, wheel_devstack: Path, tmp_path: Path) -> None:
    root = tmp_path / example.name
    shutil.copytree(
        REPO / "examples" / example.name,
        root,
        ignore=shutil.ignore_patterns(".devstack", "__pycache__", "devstack.toml", ".venv"),
    )
    run([sys.executable, "-m", "venv", root / ".venv"])
    run([root / ".venv" / "bin" / "pip", "install", "-q", "-r", root / "requirements.txt"])
    devstack = wheel_devstack
    said = run([devstack, "init"], cwd=root)
    public, private = free_ports(2)
    config = (root / "devstack.toml").read_text(encoding="utf-8")
    config = config.replace('listen = "127.0.0.1:5000"', f'listen = "127.0.0.1:{public}"')
    config = config.replace("app_port = 5001", f"app_port = {private}")
    (root / "devstack.toml").write_text(config, encoding="utf-8")  # ports only: free ones for the test
    url = f"http://127.0.0.1:{public}"
    before, after = example.page
    try:
        out = run([devstack, "up", "--detach"], cwd=root, timeout=120)
        assert ("no static folder" in out) == (not example.static), out
        assert before in wait_body(url + example.code_url, before), f"{example.name}: {said}"
        for relative, served in example.static:  # every static folder, through nginx, fresh
            file = root / relative
            file.write_text(file.read_text() + f"\n/* edited {time.time_ns()} */\n")
            assert wait_body(url + served, file.read_bytes()) == file.read_bytes(), served
        if example.template is not None:  # no restart asked, no FLASK_DEBUG
            name, old, new, at = example.template
            page = root / name
            assert old in page.read_text()
            page.write_text(page.read_text().replace(old, new))
            assert new.encode() in wait_body(url + at, new.encode()), (
                f"{example.name}: template edit not shown"
            )
        source = root / example.code[0]
        assert example.code[1] in source.read_text()
        source.write_text(source.read_text().replace(example.code[1], example.code[2]))
        assert after in wait_body(url + example.code_url, after), (
            f"{example.name}: the code edit was not served"
        )
        socketio_round_trip(url, example.echo)
        doctor = subprocess.run(
            [devstack, "doctor"], cwd=root, env=clean_env(), capture_output=True, text=True, timeout=120
        )
        assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr
    finally:
        subprocess.run([devstack, "down"], cwd=root, env=clean_env(), capture_output=True, timeout=60)
    assert not processes_under(root), "processes left behind"


def help_run(devstack: Path, cache: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = clean_env(XDG_CACHE_HOME=str(cache), COLUMNS=str(columns), PYTHONPROFILEIMPORTTIME="1")
    return subprocess.run([devstack, *args], env=env, capture_output=True, text=True, timeout=60)


def imported(run: subprocess.CompletedProcess[str], module: str) -> bool:
    return any(line.split("|")[-1].strip() == module for line in run.stderr.splitlines())


def test_help_goes_through_typer(wheel_devstack: Path, tmp_path: Path) -> None:
    """--help is typer's, every time (the help cache went: it saved ~70 ms on a path nobody takes
    daily); usage errors are typer's too."""
    cache = tmp_path / "cache"
    first = help_run(wheel_devstack, cache, "--help")
    assert first.returncode == 0 and "Commands" in first.stdout and imported(first, "typer")
    up = help_run(wheel_devstack, cache, "up", "-h")
    assert up.returncode == 0 and "Usage: devstack up" in up.stdout
    wrong = help_run(wheel_devstack, cache, "nope", "--help")
    assert wrong.returncode == 2 and "No such command" in wrong.stderr
    assert not list((cache / "devstack").glob("help-*.json"))
