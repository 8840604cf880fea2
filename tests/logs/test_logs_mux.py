"""LogMux and LogStore: chunks in, whole stamped lines out (pure logic, in-process)."""

from __future__ import annotations

import io
import itertools
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devstack.logs import format as fmt
from devstack.logs.sink import MAX_LINE, LogMux, by_level
from tests.support.stack import cli_env, make_full_device

RECORD = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z [oed] ")


def texts(path: Path) -> list[bytes]:
    return [line[fmt.STAMP_LEN + 3 :] for line in path.read_bytes().split(b"\n")[:-1]]


@pytest.mark.unit
def test_partial_lines_are_joined_and_a_missing_last_newline_still_counts(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, None)
    for piece in (b"hel", b"lo\nwor", b"ld\r\nlast"):
        mux.feed("app", "stdout", piece)
    mux.end("app", "stdout")
    mux.close()
    assert texts(tmp_path / "app.log") == [b"hello", b"world", b"last"]
    assert all(RECORD.match(line) for line in (tmp_path / "app.log").read_bytes().splitlines())


@pytest.mark.unit
def test_streams_and_notes_are_marked(tmp_path: Path) -> None:
    screen = io.BytesIO()
    mux = LogMux(tmp_path, screen, width=8)
    mux.feed("app", "stdout", b"out\n")
    mux.feed("app", "stderr", b"err\n")
    mux.note("app", "restarting")
    mux.close()
    codes = [
        line[fmt.STAMP_LEN + 1 : fmt.STAMP_LEN + 2]
        for line in (tmp_path / "app.log").read_bytes().splitlines()
    ]
    assert codes == [b"o", b"e", b"d"]
    shown = screen.getvalue().decode().splitlines()
    assert [line[9:] for line in shown] == ["app      | out", "app      ! err", "app      * restarting"]


@pytest.mark.unit
def test_invalid_utf8_and_long_lines_pass_through(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, None, max_bytes=1 << 30)
    junk = b"\xff\xfe\x80 not utf-8 \xc3\x28\n"
    long_line = b"x" * (MAX_LINE * 3)
    mux.feed("app", "stdout", junk)
    for start in range(0, len(long_line), 65536):  # as os.read would hand it over
        mux.feed("app", "stdout", long_line[start : start + 65536])
    mux.feed("app", "stdout", b"\nafter\n")
    mux.close()
    lines = texts(tmp_path / "app.log")
    assert lines[0] == junk[:-1]
    assert b"".join(lines[1:-1]) == long_line  # written in pieces, never dropped
    assert lines[-1] == b"after"


@pytest.mark.unit
def test_color_policy_on_screen(tmp_path: Path) -> None:
    colored, plain = io.BytesIO(), io.BytesIO()
    child_line = b"\x1b[31mred\x1b[0m and \x1b[1mbold\n"
    for screen, color in ((colored, True), (plain, False)):
        mux = LogMux(None, screen, color=color)
        mux.feed("app", "stdout", child_line)
        mux.close()
    assert b"\x1b" not in plain.getvalue()
    assert plain.getvalue().endswith(b"| red and bold\n")
    assert b"\x1b[31mred" in colored.getvalue()  # the child's own colors are kept
    assert colored.getvalue().endswith(fmt.RESET + b"\n")  # and never bleed into the next line


@pytest.mark.unit
def test_rotation_keeps_n_generations_and_every_line(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, None, max_bytes=4096, backups=2)
    for i in range(300):
        mux.feed("app", "stdout", b"line %04d\n" % i)
    mux.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]
    kept = [*texts(tmp_path / "app.log.2"), *texts(tmp_path / "app.log.1"), *texts(tmp_path / "app.log")]
    numbers = [int(line.split()[1]) for line in kept]
    assert numbers == list(range(numbers[0], 300))  # newest kept, in order, no gap
    assert all(p.stat().st_size < 4096 + 64 for p in tmp_path.iterdir())


@pytest.mark.unit
def test_full_disk_warns_once_and_the_live_view_goes_on(tmp_path: Path) -> None:
    make_full_device(tmp_path / "app.log")  # every write: ENOSPC
    screen = io.BytesIO()
    mux = LogMux(tmp_path, screen)
    for i in range(5):
        mux.feed("app", "stdout", b"line %d\n" % i)
    mux.close()
    shown = screen.getvalue().decode()
    assert shown.count("cannot write logs") == 1
    assert "No space left on device" in shown
    assert all(f"| line {i}" in shown for i in range(5))


@pytest.mark.unit
def test_unusable_log_dir_warns_and_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the folder should be")
    screen = io.BytesIO()
    mux = LogMux(blocker, screen)
    mux.feed("app", "stdout", b"still shown\n")
    mux.close()
    assert screen.getvalue().decode().count("cannot write logs") == 1
    assert b"| still shown" in screen.getvalue()


@pytest.mark.unit
def test_hold_keeps_the_screen_back_until_release(tmp_path: Path) -> None:
    screen = io.BytesIO()
    mux = LogMux(tmp_path, screen)
    mux.hold()
    mux.feed("app", "stdout", b"during the spinner\n")
    assert screen.getvalue() == b""
    assert texts(tmp_path / "app.log") == [b"during the spinner"]
    mux.release()
    mux.flush()
    assert b"during the spinner" in screen.getvalue()
    mux.close()


@pytest.mark.unit
def test_concurrent_feeders_keep_lines_whole_and_in_order(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, io.BytesIO(), max_bytes=1 << 30)
    count = 20000

    def produce(name: str) -> None:
        data = b"".join(b"%s %06d\n" % (name.encode(), i) for i in range(count))
        for start in range(0, len(data), 4093):  # odd chunking: lines cut anywhere
            mux.feed(name, "stdout", data[start : start + 4093])
        mux.end(name, "stdout")

    threads = [threading.Thread(target=produce, args=(f"p{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mux.close()
    for i in range(3):
        lines = texts(tmp_path / f"p{i}.log")
        assert lines == [b"p%d %06d" % (i, n) for n in range(count)]


@pytest.mark.unit
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=12))
@settings(max_examples=200, deadline=None)
@example(data=b"\x1b]unterminated title\nnext line\n\x1b[31", cuts=[5])
def test_any_bytes_cut_anywhere_come_out_whole(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, cuts: list[int]
) -> None:
    log_dir = tmp_path_factory.mktemp("logs")
    screen = io.BytesIO()
    mux = LogMux(log_dir, screen, prefix=False, max_bytes=1 << 30)
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, stop in itertools.pairwise(edges):
        mux.feed("app", "stdout", data[start:stop])
    mux.end("app", "stdout")
    mux.close()
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    # CRLF line ends become LF (the last, unterminated line too); nothing else changes.
    expected = [line[:-1] if line.endswith(b"\r") else line for line in expected]
    stored = texts(log_dir / "app.log") if expected else []
    assert stored == expected
    shown = screen.getvalue()
    assert b"\x1b" not in shown
    assert shown.count(b"\n") == len(expected)  # stripping escapes never swallows a line
    assert shown == b"".join(fmt.strip_ansi(line) + b"\n" for line in expected)


@pytest.mark.unit
def test_a_terminal_that_stops_reading_never_stalls_the_logs(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # a terminal after Ctrl-S: nobody reads
    terminal = os.fdopen(write_end, "wb")
    mux = LogMux(tmp_path, terminal, max_bytes=1 << 30)
    assert mux.screen is not None
    mux.screen.limit = 256 * 1024
    lines = 50_000

    def feed_all() -> None:
        for s in range(0, lines, 1000):
            mux.feed("app", "stdout", b"".join(b"line %06d\n" % i for i in range(s, s + 1000)))

    feeder = threading.Thread(target=feed_all)
    feeder.start()
    feeder.join(timeout=60)
    assert not feeder.is_alive(), "feed() blocked on the terminal"
    assert len(texts(tmp_path / "app.log")) == lines  # the files got every line meanwhile

    shown = bytearray()
    drainer = threading.Thread(target=lambda: shown.extend(b"".join(iter_read(read_end))))
    drainer.start()  # the terminal reads again
    mux.close()
    terminal.close()
    drainer.join(timeout=60)
    os.close(read_end)
    text = bytes(shown)
    skipped = sum(int(n) for n in re.findall(rb"devstack: (\d+) lines not shown", text))
    assert skipped > 0
    assert text.count(b"| line ") + skipped == lines


def iter_read(fd: int) -> list[bytes]:
    out = []
    while chunk := os.read(fd, 65536):
        out.append(chunk)
    return out


@pytest.mark.unit
def test_extra_processes_never_share_a_named_source_color() -> None:
    named = set(fmt.NAMED_COLORS.values())
    assert all(fmt.color_for(name) not in named for name in ("ticker", "css", "jobs", "p1", "w"))


def test_an_extra_process_keeps_its_color_across_runs() -> None:
    """Not salted per process as hash() is: two interpreters with different hash seeds agree."""
    code = "from devstack.logs import format; print(format.color_for('css').decode())"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env=cli_env(PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert seen == {fmt.color_for("css").decode()}


@pytest.mark.unit
def test_gunicorn_info_lines_are_not_errors() -> None:
    block = (
        b"[2026-12-04 03:00:00 +0000] [11] [INFO] Starting gunicorn 27.0.1\n"
        b"[2026-12-04 03:00:00 +0000] [12] [INFO] Booting worker with pid: 12\n"
        b"[2026-12-04 03:00:01 +0000] [12] [ERROR] Exception in worker process\n"
        b"Traceback (most recent call last):\n"
        b"ModuleNotFoundError: No module named 'x'\n"
        b"[2026-12-04 03:00:02 +0000] [11] [DEBUG] 1 workers\n"
    )
    runs = by_level(block)
    assert [stream for stream, _ in runs] == ["stdout", "stderr", "stdout"]
    assert runs[1][1].count(b"\n") == 3  # the ERROR line and its traceback stay together
    assert b"".join(run for _, run in runs) == block
