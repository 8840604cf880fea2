"""`devstack doctor --url ... --nginx-conf ... --static-dir ...` on stacks devstack did not start.

Every check is proven on a real broken setup (a real nginx config run by nginx, a real gunicorn)
by its ID, and the corrected setup passes it. One broken nginx serves several findings where each
finding is independent of the others.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import probes
from tests.support.doctor import GOOD_PROXY, Forward, doctor, finding, gunicorn, nginx, render, statuses
from tests.support.stack import EXAMPLE, cli_env, free_ports

pytestmark = pytest.mark.needs_nginx


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doctor") / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    return root


@pytest.fixture(scope="module")
def good_app(app_dir: Path) -> Iterator[int]:
    """The example app under a correct gunicorn: gthread, one worker, loopback."""
    port = free_ports(1)[0]
    with gunicorn(
        app_dir, port, "-k", "gthread", "-w", "1", "--threads", "8", log=app_dir.parent / "good-gunicorn.log"
    ):
        yield port


def ext_args(url: str, conf: Path, static: Path, *extra: str) -> list[str]:
    return ["--url", url, "--nginx-conf", str(conf), "--static-dir", str(static), *extra]


def test_correct_setup_passes_every_check(app_dir: Path, good_app: int, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    with nginx(render(tmp_path, port, good_app, static), tmp_path / "ngx", port) as conf:
        code, report = doctor(*ext_args(f"http://127.0.0.1:{port}", conf, static))
    states = statuses(report)
    bad = {k: v for k, v in states.items() if v not in ("ok", "na")}
    assert not bad, [finding(report, k) for k in bad]
    assert code == 0
    assert report["target"]["nginx_config_source"] == "nginx -T"
    # The checks that cannot apply to this setup, and only those, are n/a.
    assert {k for k, v in states.items() if v == "na"} <= {
        "gunicorn.reload-shared-fs",
        "static.cache-busting",
        "nginx.redirect-port",
        "static.browser",  # no tab is connected to a stack devstack did not start
        "gunicorn.last-up",  # no `devstack up` ran it: nothing on record
        "gunicorn.plan",  # no devstack.toml to plan from
        "procs.crashing",  # devstack supervises no process here: no restarts on record
        "net.tls-trust",  # the URL is http://
        "gunicorn.declared",  # doctor runs in devstack's repository, which declares no gunicorn
    }


def test_config_copied_from_the_docs(app_dir: Path, good_app: int, tmp_path: Path) -> None:
    """The classic: `location /static { alias ...; expires 30d; }`, no websocket headers,
    Host $host, short timeouts, open_file_cache — reached through a port forward."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    static_block = """
        location /static {
            alias STATIC/;
            expires 30d;
            autoindex on;
        }"""
    proxy = """
        location / {
            proxy_pass http://app;
            proxy_set_header Host $host;
            proxy_read_timeout 20s;
        }"""
    extra = "open_file_cache max=100 inactive=60s;\n    open_file_cache_valid 60s;"
    text = render(tmp_path, port, good_app, static, static_block, proxy, extra)
    with nginx(text, tmp_path / "ngx", port) as conf:
        forward = Forward(port)
        try:
            url = f"http://127.0.0.1:{forward.port}"
            code, report = doctor(*ext_args(url, conf, static))
            states = statuses(report)
            expected = {
                "static.explicit-cache": "error",
                "nginx.alias-traversal": "error",
                "nginx.autoindex": "warning",
                "nginx.open-file-cache": "warning",
                "nginx.redirect-port": "warning",
                "socketio.upgrade": "error",
                "socketio.host-port": "error",
                "socketio.read-timeout": "warning",
                "socketio.buffering": "warning",
                "static.cache-busting": "info",
            }
            assert {k: states[k] for k in expected} == expected, report
            assert code == 1
            # Evidence: the header and the config line with file:line.
            explicit = finding(report, "static.explicit-cache")
            assert any(e["kind"] == "header" and "max-age=2592000" in e["text"] for e in explicit["evidence"])
            assert any(
                e["kind"] == "config"
                and e["text"] == "expires 30d;"
                and e["where"].startswith(str(conf) + ":")
                for e in explicit["evidence"]
            )
            traversal = finding(report, "nginx.alias-traversal")
            assert "downloads" in traversal["finding"]  # the active probe got app.py's bytes
            assert "Location" in finding(report, "nginx.redirect-port")["evidence"][0]["text"]
            assert "400" in str(finding(report, "socketio.host-port")["evidence"])
            # These faults are independent of the others: the rest still pass.
            for ok_id in (
                "static.ladder",
                "gunicorn.running",
                "gunicorn.workers",
                "socketio.async-mode",
                "net.lan-exposure",
            ):
                assert states[ok_id] == "ok", finding(report, ok_id)

            # With nothing but the URL (how most people meet doctor first), the page's assets
            # still tell on the caching headers.
            code, report = doctor("static", "--url", url)
            only_url = statuses(report)
            assert only_url["static.explicit-cache"] == "error", report
            assert only_url["static.ladder"] == "na"
            assert code == 1

            # open_file_cache: a file replaced by rename (how editors save) stays stale.
            css = static / "css" / "app.css"
            before = css.read_bytes()
            fresh = css.with_name("app.css.new")
            fresh.write_bytes(before + b"\n/* edited */\n")
            os.replace(fresh, css)
            try:
                code, report = doctor("static.ladder", *ext_args(url, conf, static))
                ladder = finding(report, "static.ladder")
                assert ladder["status"] == "error", ladder
                assert "is nginx" in ladder["finding"], ladder
            finally:
                css.write_bytes(before)
        finally:
            forward.close()


def test_plain_nginx_without_dev_headers(app_dir: Path, good_app: int, tmp_path: Path) -> None:
    """A minimal correct-path config with nginx's defaults: heuristic caching, mtime ETags,
    and (separately) a file whose mtime is in the future."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    css = static / "css" / "app.css"
    js = static / "js" / "app.js"
    day = time.time() - 86400
    os.utime(css, (day, day))
    plain = "\n        location /static/ {\n            alias STATIC/;\n        }"
    with nginx(render(tmp_path, port, good_app, static, static=plain), tmp_path / "ngx", port) as conf:
        url = f"http://127.0.0.1:{port}"
        _, report = doctor(*ext_args(url, conf, static, "--file", "css/app.css"))
        states = statuses(report)
        assert states["static.heuristic-cache"] == "warning"
        assert "2 h" in finding(report, "static.heuristic-cache")["finding"]  # 10 % of a day
        assert states["static.weak-validator"] == "warning"
        assert states["static.cache-busting"] == "info"
        assert states["static.explicit-cache"] == "ok"
        assert states["static.clock-skew"] == "ok"
        future = time.time() + 3600
        os.utime(js, (future, future))
        try:
            code, report = doctor("static.clock-skew", *ext_args(url, conf, static, "--file", "js/app.js"))
            assert statuses(report) == {"static.clock-skew": "warning"}
            assert code == 0  # warnings do not fail
        finally:
            now = time.time()
            os.utime(js, (now, now))


def test_last_modified_only_validator(app_dir: Path, good_app: int, tmp_path: Path) -> None:
    """etag off but If-Modified-Since honoured and no no-store: whole-second validators."""
    port = free_ports(1)[0]
    static = app_dir / "static"
    block = 'location /static/ {\n alias STATIC/;\n etag off;\n add_header Cache-Control "no-cache";\n }'
    with nginx(render(tmp_path, port, good_app, static, static=block), tmp_path / "ngx", port) as conf:
        _, report = doctor("static", *ext_args(f"http://127.0.0.1:{port}", conf, static))
    check = finding(report, "static.weak-validator")
    assert check["status"] == "warning" and "1-second" in check["finding"], check
    assert statuses(report)["static.explicit-cache"] == "ok"


@pytest.mark.parametrize(
    "static_block,check_id",
    [
        ("location /static/ {\n alias STATIC;\n }", "nginx.alias-slash"),
        ("location /static/ {\n root STATIC;\n }", "nginx.root-for-alias"),
    ],
)
def test_static_mapping_mistakes(
    app_dir: Path, good_app: int, tmp_path: Path, static_block: str, check_id: str
) -> None:
    port = free_ports(1)[0]
    static = app_dir / "static"
    text = render(tmp_path, port, good_app, static, static=static_block)
    with nginx(text, tmp_path / "ngx", port) as conf:
        code, report = doctor(*ext_args(f"http://127.0.0.1:{port}", conf, static))
    states = statuses(report)
    assert states[check_id] == "error", finding(report, check_id)
    assert states["static.ladder"] == "error"  # and the ladder sees the 404 at nginx
    assert "HTTP 404" in finding(report, "static.ladder")["finding"]
    assert code == 1


def test_static_through_gunicorn_and_bad_gunicorn_flags(app_dir: Path, tmp_path: Path) -> None:
    """No static location (Flask answers /static, with a 12 h max-age), and gunicorn run with
    two workers, --reload --preload, the wrong async_mode and a 0.0.0.0 bind; nginx hard-codes
    Connection: upgrade."""
    (app_dir / "broken_app.py").write_text(
        "from app import app, socketio  # noqa: F401\n"
        "app.config['SEND_FILE_MAX_AGE_DEFAULT'] = 43200  # Flask < 2.0's default\n"
    )
    app_port, port = free_ports(2)
    static = app_dir / "static"
    hard_coded = GOOD_PROXY.replace("$connection_upgrade", '"upgrade"')
    with (
        gunicorn(
            app_dir,
            app_port,
            "-k",
            "gthread",
            "-w",
            "2",
            "--preload",
            "--reload",
            wsgi="broken_app:app",
            env={"DEVSTACK_ASYNC_MODE": "gevent"},
            bind_host="0.0.0.0",
            log=tmp_path / "gunicorn.log",
        ),
        nginx(
            render(tmp_path, port, app_port, static, static="", proxy=hard_coded), tmp_path / "ngx", port
        ) as conf,
    ):
        code, report = doctor(*ext_args(f"http://127.0.0.1:{port}", conf, static))
    states = statuses(report)
    expected = {
        "static.served-by-app": "warning",
        "static.flask-max-age": "warning",
        "static.explicit-cache": "error",
        "gunicorn.workers": "error",
        "gunicorn.reload-preload": "warning",
        "socketio.async-mode": "error",
        "net.lan-exposure": "warning",
        "socketio.upgrade": "info",  # Connection hard-coded to upgrade: what the docs advise
    }
    assert {k: states[k] for k in expected} == expected, report
    assert code == 1
    assert "--preload" in str(finding(report, "gunicorn.reload-preload")["evidence"])


def test_gthread_with_one_thread(app_dir: Path, tmp_path: Path) -> None:
    """gthread's default is one thread: one websocket starves every other request."""
    app_port = free_ports(1)[0]
    with gunicorn(app_dir, app_port, "-k", "gthread", log=tmp_path / "gunicorn.log"):
        code, report = doctor(
            "gunicorn.threads",
            "--url",
            f"http://127.0.0.1:{app_port}",
            "--app-url",
            f"http://127.0.0.1:{app_port}",
        )
    assert statuses(report) == {"gunicorn.threads": "error"}, report
    assert code == 1


def test_gunicorn_that_failed_to_boot(app_dir: Path, good_app: int, tmp_path: Path) -> None:
    """gunicorn 26+ with the eventlet worker exits at once; doctor finds why in its log."""
    app_port, port = free_ports(2)
    log = tmp_path / "gunicorn.log"
    static = app_dir / "static"
    with gunicorn(app_dir, app_port, "-k", "eventlet", log=log, wait=False) as proc:
        proc.popen.wait(timeout=30)
    with nginx(render(tmp_path, port, app_port, static), tmp_path / "ngx", port) as conf:
        code, report = doctor(
            "gunicorn", *ext_args(f"http://127.0.0.1:{port}", conf, static, "--gunicorn-log", str(log))
        )
    running = finding(report, "gunicorn.running")
    assert running["status"] == "error", running
    assert running["finding"].startswith("gunicorn did not boot: its eventlet worker is gone"), running
    assert code == 1


def test_nothing_answers_at_the_url() -> None:
    dead = free_ports(1)[0]
    code, report = doctor("--url", f"http://127.0.0.1:{dead}")
    assert statuses(report)["net.public-url"] == "error", report
    assert code == 1


def test_list_and_choose_checks() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "devstack", "doctor", "--list-checks"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    ids = [line.split()[0] for line in listed.stdout.splitlines()]
    assert len(ids) == len(set(ids)) >= 28 and "static.ladder" in ids
    unknown = subprocess.run(
        [sys.executable, "-m", "devstack", "doctor", "no.such-check"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "unknown check" in unknown.stderr


def test_ladder_names_app_server_when_only_it_differs(app_dir: Path, good_app: int, tmp_path: Path) -> None:
    """nginx serves a different folder than Flask: public is right, the app rung differs."""
    port = free_ports(1)[0]
    other = tmp_path / "other-static"
    shutil.copytree(app_dir / "static", other)
    (other / "css" / "app.css").write_text("h1 { color: red; }\n")
    with nginx(render(tmp_path, port, good_app, other), tmp_path / "ngx", port) as conf:
        _, report = doctor("static.ladder", *ext_args(f"http://127.0.0.1:{port}", conf, other))
    ladder = finding(report, "static.ladder")
    assert ladder["status"] == "warning" and "app server" in ladder["finding"], ladder
    assert probes.sha256_file(other / "css" / "app.css") != probes.sha256_file(
        app_dir / "static" / "css" / "app.css"
    )


def test_an_old_worker_after_a_reload_is_told_apart_from_several_workers(
    app_dir: Path, tmp_path: Path
) -> None:
    """A gunicorn run by hand, HUPed while a websocket is open: the old worker stays (devstack's
    own stops it after the grace period) — one worker configured, two alive, not `-w 2`."""
    import psutil
    import socketio

    app_port = free_ports(1)[0]
    url = f"http://127.0.0.1:{app_port}"
    with gunicorn(
        app_dir, app_port, "-k", "gthread", "-w", "1", "--threads", "4", log=tmp_path / "g.log"
    ) as g:
        master = psutil.Process(g.popen.pid)
        client = socketio.Client(reconnection=False)
        client.connect(url, transports=["websocket"], wait_timeout=10)
        try:
            old = master.children()
            master.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while len(master.children()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(master.children()) == 2
            code, report = doctor("gunicorn.workers", "--url", url, "--app-url", url)
        finally:
            client.disconnect()
    check = finding(report, "gunicorn.workers")
    assert check["status"] == "warning", check
    assert f"pid {old[0].pid}" in check["finding"] and "from before a reload" in check["finding"], check
    assert code == 0  # a warning: the new worker serves; the old one only holds its connections
