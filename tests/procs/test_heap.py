"""procs/heap.py: the supervisor keeps one malloc arena and gives free pages back, so an
all-day run stays the size it started at (the soak measured glibc's per-thread arenas growing
~7 MB in 15 minutes before)."""

from __future__ import annotations

import os
import threading

import pytest

from devstack.procs import heap
from tests.support.require import needs
from tests.support.stack import Project, memory_split

needs_glibc = needs(heap._glibc() is not None, "mallopt/malloc_trim are glibc's: glibc not found")


@pytest.mark.unit
def test_the_trimmer_trims_every_interval_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    trimmed = threading.Semaphore(0)

    def trim() -> bool:
        trimmed.release()
        return True

    monkeypatch.setattr(heap, "trim", trim)
    monkeypatch.setattr(heap, "_glibc", lambda: object())
    trimmer = heap.Trimmer(every=0.01)
    trimmer.start()
    assert all(trimmed.acquire(timeout=5.0) for _ in range(3))  # again and again
    trimmer.stop()
    assert trimmer._thread is not None and not trimmer._thread.is_alive()


@pytest.mark.unit
def test_nothing_is_started_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert heap.one_arena() is False and heap.trim() is False
    trimmer = heap.Trimmer()
    trimmer.start()
    assert trimmer._thread is None
    trimmer.stop()


@needs_glibc
@pytest.mark.needs_nginx
def test_the_supervisor_has_no_thread_arena(stack: Project) -> None:
    """Its log pumps, watchers and live-reload server all allocate from the main arena."""
    pid = int(stack.state()["supervisor"]["pid"])
    assert len(os.listdir(f"/proc/{pid}/task")) > 10  # it does run many threads
    split = memory_split(pid)
    assert split["heap"] > 0, split  # the smaps were read
    assert split["thread arenas"] == 0, split
