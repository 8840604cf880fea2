"""app.nodes > 1: a code edit reloads the nodes one after another (each once the last one's new
worker said it serves, or after ROLL_WAIT), and the tabs reload once every node serves."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from devstack.live.reloader import LiveReload
from devstack.procs.supervisor import ROLL_WAIT
from tests.procs.test_supervisor import FakeSink, Rig

pytestmark = pytest.mark.unit

NODES = ("gunicorn.1", "gunicorn.2", "gunicorn.3", "redis", "nginx")


def hups(rig: Rig) -> list[str]:
    return [name for name in NODES[:3] if rig.child(name).signals == [signal.SIGHUP]]


def test_nodes_reload_one_after_another_on_worker_ready() -> None:
    rig = Rig(names=NODES)
    rig.sup.roll_on_ready = True
    rig.sup.start_all()
    rig.sup.app_changed("app.py changed")
    rig.step()
    assert hups(rig) == ["gunicorn.1"]
    rig.sup.node_ready(2)  # not the node reloading now: nothing moves
    rig.step()
    assert hups(rig) == ["gunicorn.1"]
    rig.sup.node_ready(1)
    rig.step()
    assert hups(rig) == ["gunicorn.1", "gunicorn.2"]
    rig.sup.node_ready(2)
    rig.step()
    assert hups(rig) == ["gunicorn.1", "gunicorn.2", "gunicorn.3"]
    assert rig.child("redis").signals == [] and rig.child("nginx").signals == []


def test_a_node_that_never_says_ready_holds_the_roll_for_roll_wait_only() -> None:
    rig = Rig(names=NODES)
    rig.sup.roll_on_ready = True
    rig.sup.start_all()
    rig.sup.app_changed("app.py changed")
    rig.step()
    rig.clock.now += ROLL_WAIT - 0.1
    rig.step()
    assert hups(rig) == ["gunicorn.1"]
    rig.clock.now += 0.2
    rig.step()
    assert hups(rig) == ["gunicorn.1", "gunicorn.2"]


def test_without_worker_ready_every_node_reloads_at_once() -> None:
    rig = Rig(names=NODES)
    rig.sup.start_all()
    rig.sup.app_changed("app.py changed")
    rig.step()
    assert hups(rig) == ["gunicorn.1", "gunicorn.2", "gunicorn.3"]


def test_a_stopped_node_starts_again_and_the_others_roll() -> None:
    rig = Rig(names=NODES)
    rig.sup.roll_on_ready = True
    rig.sup.start_all()
    rig.child("gunicorn.2").alive = False
    rig.sup.app_changed("app.py changed")
    rig.step()
    assert rig.child("gunicorn.2").starts == 2
    rig.sup.node_ready(1)
    rig.step()
    assert hups(rig) == ["gunicorn.1", "gunicorn.3"]


class FakeHub:
    def __init__(self) -> None:
        self.ready = 0
        self.code_pending: Any = None

    def worker_ready(self, status_of: Any) -> None:
        self.ready += 1

    def code_changed(self, why: str) -> None:
        self.code_pending = why


def test_tabs_reload_once_every_node_serves(tmp_path: Path) -> None:
    told: list[int] = []
    live = LiveReload(
        tmp_path, "http://127.0.0.1:5000", "/static/", FakeSink(), nodes=3, on_node_ready=told.append
    )
    hub = FakeHub()
    live.hub = hub  # type: ignore[assignment]
    for node in (1, 2, 3):  # the first boot: counted, then forgotten by the edit
        live._ready_text(f"worker-ready {100 + node} {node}")
    live.code_changed("app.py changed")
    for node in (1, 2):
        live._ready_text(f"worker-ready {200 + node} {node}")
        live._worker_ready()
    assert hub.ready == 0 and told == [1, 2, 3, 1, 2]
    live._ready_text("worker-ready 203 3")
    live._worker_ready()
    assert hub.ready == 1


def test_one_node_tells_the_tabs_at_once(tmp_path: Path) -> None:
    live = LiveReload(tmp_path, "http://127.0.0.1:5000", "/static/", FakeSink())
    hub = FakeHub()
    live.hub = hub  # type: ignore[assignment]
    live.code_changed("app.py changed")
    live._worker_ready()
    assert hub.ready == 1 and live.server.on_ready_text is None
