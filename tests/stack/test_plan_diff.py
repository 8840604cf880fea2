"""plan.diff over two plans built from hand-made facts: what an edit of devstack.toml asks of a
running stack, decided without a process (LocalStack.reconfigure applies it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from devstack.project import asyncmode
from devstack.project import config as config_mod
from devstack.project.config import Config
from devstack.stack import plan
from tests.support.facts import make_facts
from tests.support.stack import Project, make_project

pytestmark = pytest.mark.unit


class Edits:
    """One project, planned before and after an edit of its devstack.toml."""

    def __init__(self, tmp_path: Path) -> None:
        self.project: Project = make_project(tmp_path)
        self.old_config = config_mod.load(self.project.config_path)
        self.old_plan = self.build(self.old_config)

    @staticmethod
    def build(config: Config, **facts: Any) -> plan.Plan:
        return plan.build(config, make_facts(config, **facts), colors=False)

    def after(
        self, app: str = "", static: str = "", server: str = "", extra: str = "", **facts: Any
    ) -> plan.PlanChanges:
        self.project.write_config(app=app, static=static, server=server, extra=extra)
        new_config = config_mod.load(self.project.config_path)
        return plan.diff(self.old_config, self.old_plan, new_config, self.build(new_config, **facts))


@pytest.fixture
def edits(tmp_path: Path) -> Edits:
    return Edits(tmp_path)


def test_nothing_changed_asks_for_nothing(edits: Edits) -> None:
    changes = edits.after()
    assert changes == plan.PlanChanges()
    assert changes.applied == []


def test_an_app_setting_restarts_gunicorn_only(edits: Edits) -> None:
    changes = edits.after(app="threads = 8")
    assert [s.name for s in changes.restart] == ["gunicorn"]
    assert "--threads" in changes.restart[0].argv and "8" in changes.restart[0].argv
    assert not changes.reload_nginx and not changes.ports and not changes.remove and not changes.later
    assert changes.applied == ["gunicorn restarted"]


def test_an_app_env_change_restarts_the_extra_processes_too(edits: Edits) -> None:
    edits.project.write_config(extra='[processes]\ncss = "echo css"\n')
    edits.old_config = config_mod.load(edits.project.config_path)
    edits.old_plan = edits.build(edits.old_config)
    changes = edits.after(app='[app.env]\nMODE = "x"', extra='[processes]\ncss = "echo css"\n')
    assert [s.name for s in changes.restart] == ["gunicorn", "css"]


def test_a_new_process_starts_and_a_dropped_one_stops(edits: Edits) -> None:
    added = edits.after(extra='[processes]\ncss = "echo css"\n')
    assert [s.name for s in added.restart] == ["css"] and added.applied == ["css restarted"]
    edits.old_config = config_mod.load(edits.project.config_path)
    edits.old_plan = edits.build(edits.old_config)
    dropped = edits.after()
    assert dropped.remove == ("css",) and not dropped.restart
    assert dropped.applied == ["css stopped"]


def test_a_new_public_port_reloads_nginx_and_must_be_free(edits: Edits) -> None:
    old = edits.project.public_port
    edits.project.public_port = old + 1  # write_config writes server.listen from it
    changes = edits.after()
    assert changes.ports == (plan.PortCheck("server.listen", "127.0.0.1", old + 1),)
    # gunicorn too: its environment names the public URL (DEVSTACK_PUBLIC_URL).
    assert changes.restart[0].env["DEVSTACK_PUBLIC_URL"].endswith(f":{old + 1}")
    assert changes.applied == ["gunicorn restarted", "nginx reloaded"]


def test_a_new_app_port_restarts_gunicorn_and_reloads_nginx(edits: Edits) -> None:
    edits.project.app_port += 1
    changes = edits.after()
    assert [s.name for s in changes.restart] == ["gunicorn"] and changes.reload_nginx
    assert changes.ports == (plan.PortCheck("server.app_port", "127.0.0.1", edits.project.app_port),)
    assert changes.applied == ["gunicorn restarted", "nginx reloaded"]


def test_swapping_the_two_ports_checks_neither(edits: Edits) -> None:
    # Both are held by this stack: nginx rebinds on HUP, gunicorn restarts onto the other.
    p = edits.project
    p.public_port, p.app_port = p.app_port, p.public_port
    assert edits.after().ports == ()


def test_a_listen_host_change_on_the_same_port_checks_nothing(edits: Edits) -> None:
    # Same number on another address: still ours, so nothing to check (nginx rebinds on HUP).
    text = edits.project.config_path.read_text()
    edits.project.config_path.write_text(text.replace('listen = "127.0.0.1:', 'listen = "[::1]:'))
    new_config = config_mod.load(edits.project.config_path)
    changes = plan.diff(edits.old_config, edits.old_plan, new_config, edits.build(new_config))
    assert changes.reload_nginx and changes.ports == ()


def test_an_nginx_only_setting_reloads_nginx_only(edits: Edits) -> None:
    changes = edits.after(server="autoindex = true")
    assert changes.reload_nginx and not changes.restart and not changes.ports
    assert changes.applied == ["nginx reloaded"]


@pytest.mark.parametrize(
    ("edit", "later"),
    [
        ({"app": "reload = false"}, "the app watcher settings"),
        ({"app": 'reload_engine = "poll"'}, "the app watcher settings"),
        ({"static": 'polling = "always"'}, "the static watcher settings"),
        ({"extra": "[logs]\nbackups = 5"}, "[logs]"),
        ({"server": "live_reload = false"}, "server.live_reload"),
    ],
)
def test_settings_a_running_stack_cannot_take_wait_for_the_next_up(
    edits: Edits, edit: dict[str, str], later: str
) -> None:
    changes = edits.after(**edit)
    assert [item for item in changes.later if item.startswith(later)], changes.later


def test_a_static_folder_that_appeared_is_for_the_next_up(edits: Edits) -> None:
    changes = edits.after(has_static=False)
    assert changes.later == ("the static watcher settings (static.dir, static.polling)",)
    assert changes.reload_nginx  # nginx proxies everything now
    assert changes.warnings and changes.warnings[0].startswith("no static folder")


def test_only_new_warnings_are_reported(edits: Edits) -> None:
    patched = asyncmode.read("from gevent import monkey\nmonkey.patch_all()\n", "app.py")
    edits.old_plan = edits.build(edits.old_config, async_use=patched)
    assert edits.old_plan.warnings
    changes = edits.after(app="threads = 8", async_use=patched)
    assert changes.warnings == ()  # said at start already
    shared = edits.after(server='sendfile = "on"', async_use=patched, static_fstype="nfs")
    assert len(shared.warnings) == 1 and shared.warnings[0].startswith("sendfile is on but")


def test_a_spec_equal_in_value_is_not_restarted(edits: Edits) -> None:
    # Plans compare specs by value: a re-plan of the same config restarts nothing.
    again = edits.build(edits.old_config)
    assert again is not edits.old_plan
    assert plan.diff(edits.old_config, edits.old_plan, edits.old_config, again) == plan.PlanChanges()
    moved = dataclasses.replace(edits.old_config, state_root=edits.project.root / "elsewhere")
    changes = plan.diff(edits.old_config, edits.old_plan, moved, edits.build(moved))
    assert changes.reload_nginx  # the pid and temp paths moved


def test_a_nodes_edit_waits_and_reports_only_new_warnings(edits: Edits) -> None:
    patched = asyncmode.read("from gevent import monkey\nmonkey.patch_all()\n", "app.py")
    edits.old_plan = edits.build(edits.old_config, async_use=patched)
    assert len(edits.old_plan.warnings) == 1  # said at start already: not again
    changes = edits.after(
        app="nodes = 2",
        server='sendfile = "on"',
        async_use=patched,
        static_fstype="nfs",
        redis="/usr/bin/redis-server",
        queue_secret="s" * 32,
    )
    assert changes == plan.PlanChanges(
        later=("app.nodes and [queue]",),
        warnings=(
            f"sendfile is on but {edits.old_config.static_dir} is on nfs: nginx may serve stale or "
            'truncated files — set server.sendfile = "auto"',
        ),
    )


def test_a_changed_nginx_spec_is_not_restarted(edits: Edits) -> None:
    # nginx is reloaded when its nginx.conf changes, never restarted by a re-plan: another
    # binary found on this edit changes its spec and asks for nothing.
    changes = edits.after(nginx="/opt/nginx/sbin/nginx")
    assert changes == plan.PlanChanges()


def test_a_new_static_extra_is_for_the_next_up_and_reloads_nginx(edits: Edits) -> None:
    (edits.project.root / "chat" / "static").mkdir(parents=True)
    changes = edits.after(extra='[[static.extra]]\nurl = "/chat/static/"\ndir = "chat/static"\n')
    assert changes == plan.PlanChanges(reload_nginx=True, later=("the static watchers of [[static.extra]]",))
