"""A static tree of 100,000 files and bursts of 10,000 file events: the watchers keep up, in
bounded memory, and the last edit of each file is the one that counts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack.stack import probes
from tests.support.faults import notes, serving
from tests.support.stack import Project, kill_leftovers, make_project, processes_under, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]

TREE_FILES = int(os.environ.get("DEVSTACK_FAULT_TREE", "100000"))
BURST = int(os.environ.get("DEVSTACK_FAULT_BURST", "10000"))
PER_DIR = 1000
MEMORY_BOUND = 64 * 1024 * 1024  # growth of the supervisor's RSS over a burst


def make_tree(static: Path, files: int) -> None:
    for index in range(files):
        folder = static / "bulk" / f"d{index // PER_DIR:03d}"
        if index % PER_DIR == 0:
            folder.mkdir(parents=True)
        (folder / f"f{index % PER_DIR:04d}.txt").write_bytes(b"x")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("big"))
    make_tree(project.root / "static", TREE_FILES)
    yield project
    project.down()
    left = processes_under(project.root)
    kill_leftovers(project.root)
    assert not left, left


def rss(project: Project) -> int:
    return int(psutil.Process(project.state()["supervisor"]["pid"]).memory_info().rss)


def greeting(project: Project, text: str) -> None:
    app = project.root / "app.py"
    source = app.read_text()
    start = source.index('GREETING = "') + len('GREETING = "')
    app.write_text(source[:start] + text + source[source.index('"', start) :])


def burst(project: Project, events: int, app_edits: int = 5) -> str:
    """Rewrite static files round-robin; edit app.py now and then. Returns the last greeting."""
    files = sorted((project.root / "static" / "bulk" / "d000").iterdir())[:1000]
    last = ""
    for number in range(events):
        files[number % len(files)].write_text(f"edit {number}\n")
        if number % max(1, events // app_edits) == 0:
            last = f"Hello burst {number}"
            greeting(project, last)
    return last


@pytest.mark.parametrize("polling", ["never", "always"])
def test_app_watcher_keeps_up_with_a_huge_static_tree(big: Project, polling: str) -> None:
    big.write_config(static=f'polling = "{polling}"')
    big.up_detached()
    try:
        before = rss(big)
        last = burst(big, BURST)
        # The last app edit is the one served; static edits never reloaded the app.
        assert wait_for(lambda: last.encode() in probes.http_get(big.url + "/").body, timeout=60)
        reloads = [line for line in notes(big, "gunicorn") if line.startswith("reloading")]
        assert reloads and not [line for line in reloads if ".txt" in line], reloads[-5:]
        assert rss(big) - before < MEMORY_BOUND, (before, rss(big))
        if polling == "always":
            # The polling observer must not hold a snapshot of the 100,000 static files.
            assert rss(big) < 160 * 1024 * 1024, rss(big)
        assert serving(big)
    finally:
        big.down()


def test_freshness_watcher_verifies_the_last_edit_of_every_file(project: Project) -> None:
    """Through the public interface (the `watcher` log source): after a 10,000-event burst over
    1,000 files and one last edit of a sentinel, the sentinel is reported fresh — the watcher
    checks files in the order their edits settled, so every file's last edit was checked by
    then — and nothing was reported STALE or unverifiable."""
    burst_dir = project.root / "static" / "burst"
    burst_dir.mkdir()
    files = [burst_dir / f"f{i:04d}.txt" for i in range(1000)]
    for file in files:
        file.write_text("initial\n")
    sentinel = burst_dir / "0-last.txt"  # sorts first: named even in a batch summary line
    project.up_detached()
    before = rss(project)
    for number in range(BURST):
        files[number % len(files)].write_text(f"edit {number}\n")
    sentinel.write_text("the very last edit\n")

    def said() -> list[str]:
        text = (project.state_dir / "logs" / "watcher.log").read_text(errors="replace")
        return [line.partition(" d ")[2] for line in text.splitlines()]

    assert wait_for(
        lambda: any(line.startswith("fresh") and "burst/0-last.txt" in line for line in said()),
        timeout=300,
        interval=0.2,
    ), said()[-5:]
    lines = said()
    assert not [line for line in lines if line.startswith(("STALE", "cannot verify"))], lines
    checked = sum(
        int(line.split()[1]) if line.split()[2:3] == ["files"] else 1
        for line in lines
        if line.startswith("fresh") and "burst/" in line
    )
    assert checked >= len(files) + 1, checked  # every file checked at least once
    assert rss(project) - before < MEMORY_BOUND
    # And what the watcher vouched for is what nginx serves: the last edit of every file.
    for file in [*files, sentinel]:
        assert probes.check_static(project.url, "/static/", project.root / "static", file).fresh
