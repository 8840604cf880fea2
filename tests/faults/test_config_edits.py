"""devstack.toml edited while the stack runs, and generated files edited by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.stack import probes
from devstack.system import ports
from tests.support.faults import busy_ports, notes, recorded, serving
from tests.support.stack import (
    Project,
    echo_project,
    free_port,
    processes_under,
    served,
    wait_for,
    write_mark,
)

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]


def said(project: Project, text: str, timeout: float = 20) -> bool:
    return wait_for(lambda: any(text in line for line in notes(project, "devstack")), timeout=timeout)


def test_edit_that_nginx_rejects_keeps_the_old_nginx_serving(stack: Project) -> None:
    nginx = recorded(stack, "nginx")
    conf = (stack.state_dir / "nginx.conf").read_text()
    # A host name that does not resolve: valid TOML, valid for devstack, refused by `nginx -t`.
    text = stack.config_path.read_text().replace(
        f'listen = "127.0.0.1:{stack.public_port}"', f'listen = "no-such-host.invalid:{stack.public_port}"'
    )
    stack.config_path.write_text(text)
    assert said(stack, "nginx rejects the new config")
    line = next(ln for ln in notes(stack, "devstack") if "nginx rejects" in ln)
    assert "no-such-host.invalid" in line and "keeps serving the previous config" in line, line
    assert recorded(stack, "nginx") == nginx
    assert (stack.state_dir / "nginx.conf").read_text() == conf
    assert not (stack.state_dir / "nginx.conf.next").exists()
    assert serving(stack)
    assert stack.state()["status"] == "ready"


def test_broken_toml_while_running_keeps_the_stack_and_down_still_works(stack: Project) -> None:
    stack.config_path.write_text(stack.config_path.read_text() + "\nthis is = = not toml\n")
    assert said(stack, "cannot be used")
    assert serving(stack)
    result = stack.down()
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stderr
    assert not busy_ports(stack)


def test_app_env_change_is_served_by_a_gunicorn_started_with_it(tmp_path: Path) -> None:
    project = echo_project(tmp_path, "first")
    project.up_detached()
    try:
        assert served(project) == "mark=first"
        gunicorn, nginx = recorded(project, "gunicorn"), recorded(project, "nginx")
        write_mark(project, "second")
        # The effect, read from the app: a gunicorn restarted with the old settings keeps
        # answering mark=first, and one not restarted at all does too.
        assert wait_for(lambda: served(project) == "mark=second", timeout=30), served(project)
        assert recorded(project, "gunicorn") != gunicorn
        assert recorded(project, "nginx") == nginx  # an [app.env] edit leaves nginx alone
        assert said(project, "devstack.toml changed: gunicorn restarted")
    finally:
        project.down()
    assert not processes_under(project.root)


def test_listen_port_change_reloads_nginx_in_place(stack: Project) -> None:
    nginx = recorded(stack, "nginx")
    old_port, new_port = stack.public_port, free_port()
    stack.public_port = new_port
    stack.write_config()
    assert said(stack, "nginx reloaded")
    assert wait_for(lambda: serving(stack), timeout=20)
    assert recorded(stack, "nginx") == nginx  # HUP, not a restart
    assert wait_for(lambda: ports.can_bind("127.0.0.1", old_port), timeout=20)
    assert stack.state()["ports"]["public"] == new_port
    # The freshness watcher now checks through the new port.
    css = stack.root / "static/css/app.css"
    css.write_text(css.read_text() + "/* after the port change */\n")
    log = stack.state_dir / "logs" / "watcher.log"

    def checked() -> list[str]:
        lines = log.read_text().splitlines() if log.exists() else []
        return [ln for ln in lines if "css/app.css" in ln and ("fresh" in ln or "verify" in ln)]

    assert wait_for(lambda: checked(), timeout=20)
    assert all("fresh" in ln for ln in checked()), checked()


def test_autoindex_switched_on_live(stack: Project) -> None:
    gunicorn, nginx = recorded(stack, "gunicorn"), recorded(stack, "nginx")
    assert probes.http_get(stack.url + "/static/").status == 403  # no index, no listing
    stack.write_config(server="autoindex = true")
    assert said(stack, "devstack.toml changed: nginx reloaded")
    assert wait_for(lambda: probes.http_get(stack.url + "/static/").status == 200, timeout=20)
    # An nginx-only change touches nginx only, and in place.
    assert (recorded(stack, "gunicorn"), recorded(stack, "nginx")) == (gunicorn, nginx)


def test_hand_edited_nginx_conf_is_backed_up_and_reported(project: Project) -> None:
    project.up_detached()
    project.down()
    conf = project.state_dir / "nginx.conf"
    edited = conf.read_text() + "\n# my hand edit\n"
    conf.write_text(edited)
    result = project.up_detached()
    backups = list(project.state_dir.glob("nginx.conf.bak-*"))
    assert len(backups) == 1, backups
    assert backups[0].read_text() == edited
    assert "edited by hand" in result.stderr and backups[0].name in result.stderr, result.stderr
    assert "# my hand edit" not in conf.read_text()
    # Unedited: no backup, no noise.
    project.down()
    result = project.up_detached()
    assert len(list(project.state_dir.glob("nginx.conf.bak-*"))) == 1
    assert "edited by hand" not in result.stderr


def test_hand_edit_while_running_survives_a_config_change(stack: Project) -> None:
    conf = stack.state_dir / "nginx.conf"
    edited = conf.read_text() + "\n# edited while running\n"
    conf.write_text(edited)
    stack.write_config(server="autoindex = true")
    assert said(stack, "edited by hand")
    backups = list(stack.state_dir.glob("nginx.conf.bak-*"))
    assert [b.read_text() for b in backups] == [edited]
