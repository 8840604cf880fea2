"""Reading logs back: merge, tail, since, grep, JSON, follow across rotation (in-process)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from devstack.logs import format as fmt
from devstack.logs import reader
from devstack.logs.printer import Printer
from devstack.logs.query import QueryError, record_filter, since_stamp
from devstack.logs.sink import LogMux

T0 = 1_800_000_000.0


def write(path: Path, rows: list[tuple[float, str, str]]) -> None:
    clock = fmt.Clock()
    with open(path, "ab") as handle:
        for when, code, text in rows:
            handle.write(clock.utc(when) + f" {code} {text}\n".encode())


def run(
    log_dir: Path,
    names: list[str],
    lines: int | None = None,
    since: str | None = None,
    grep: str | None = None,
    **printer: bool,
) -> list[str]:
    out = io.BytesIO()
    chosen = [s for s in reader.sources(log_dir) if not names or reader.matches(s, names)]
    keep = record_filter(since, grep, now=T0 + 100)
    Printer(out, width=8, **printer).write(reader.history(log_dir, chosen, lines, keep, reader.Snapshot()))
    return out.getvalue().decode().splitlines()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    write(tmp_path / "gunicorn.log.1", [(T0 + i, "o", f"g{i}") for i in range(0, 10, 2)])
    write(tmp_path / "gunicorn.log", [(T0 + i, "o", f"g{i}") for i in range(10, 20, 2)])
    write(tmp_path / "nginx.access.log", [(T0 + i, "o", f"a{i}") for i in range(1, 20, 2)])
    write(tmp_path / "nginx.error.log", [(T0 + 7.5, "e", "oops \x1b[31mred\x1b[0m")])
    return tmp_path


def bare(lines: list[str]) -> list[str]:
    return [line.split(" ", 3)[-1] for line in lines]


@pytest.mark.unit
def test_merged_in_time_order_across_sources_and_generations(logs: Path) -> None:
    shown = bare(run(logs, []))
    assert shown[:9] == ["g0", "a1", "g2", "a3", "g4", "a5", "g6", "a7", "oops red"]
    assert len(shown) == 21


@pytest.mark.unit
def test_last_n_and_name_prefix(logs: Path) -> None:
    assert bare(run(logs, ["gunicorn"], lines=3)) == ["g14", "g16", "g18"]
    assert bare(run(logs, ["gunicorn"], lines=7)) == ["g6", "g8", "g10", "g12", "g14", "g16", "g18"]
    assert bare(run(logs, ["nginx"], lines=2)) == ["a17", "a19"]
    assert set(reader.sources(logs)) == {"gunicorn", "nginx.access", "nginx.error"}


@pytest.mark.unit
def test_since_and_grep(logs: Path) -> None:
    # now = T0 + 100: 85s ago is T0 + 15
    assert bare(run(logs, [], since="85s")) == ["a15", "g16", "a17", "g18", "a19"]
    assert bare(run(logs, [], grep=r"^g1[02]$")) == ["g10", "g12"]
    assert bare(run(logs, [], grep="oops red")) == ["oops red"]  # matches the visible text
    assert bare(run(logs, ["gunicorn"], lines=1, grep="g1")) == ["g18"]


@pytest.mark.unit
def test_since_formats() -> None:
    now = T0
    assert since_stamp("10m", now) == fmt.Clock().utc(now - 600)
    assert since_stamp("1h30m", now) == fmt.Clock().utc(now - 5400)
    assert since_stamp("2026-01-02T03:04:05Z", now) == b"2026-01-02T03:04:05.000000Z"
    assert since_stamp("2026-01-02T03:04:05+01:00", now) == b"2026-01-02T02:04:05.000000Z"
    with pytest.raises(QueryError):
        since_stamp("yesterday", now)
    with pytest.raises(QueryError):
        record_filter(None, "([unclosed")


@pytest.mark.unit
def test_json_and_no_prefix(logs: Path) -> None:
    rows = [json.loads(line) for line in run(logs, ["nginx.error"], as_json=True)]
    assert rows == [
        {
            "time": fmt.Clock().utc(T0 + 7.5).decode(),
            "process": "nginx.error",
            "stream": "stderr",
            "line": "oops red",
        }
    ]
    assert run(logs, ["gunicorn"], lines=2, prefix=False) == ["g16", "g18"]
    prefixed = run(logs, ["nginx.error"])
    assert prefixed[0].endswith(" nginx.error ! oops red")
    assert "\x1b" not in "".join(prefixed)


@pytest.mark.unit
def test_colored_output_keeps_child_colors(logs: Path) -> None:
    shown = run(logs, ["nginx.error"], color=True)[0]
    assert "\x1b[31mred" in shown and "\x1b[33mnginx.error" in shown


@pytest.mark.unit
def test_follow_survives_rotation_truncation_and_new_sources(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, None, max_bytes=4096, backups=1)
    mux.feed("app", "stdout", b"before\n")
    snapshot = reader.Snapshot()
    assert [r[3] for r in reader.history(tmp_path, ["app"], None, None, snapshot)] == [b"before"]
    follower = reader.Follower(tmp_path, [], snapshot)
    assert follower.poll() == []
    sent = [b"line %04d" % i for i in range(400)]  # several rotations between two polls
    got: list[bytes] = []
    for i, line in enumerate(sent):
        mux.feed("app", "stdout", line + b"\n")
        if i % 90 == 0:
            got += [r[3] for r in follower.poll()]
    got += [r[3] for r in follower.poll()]
    # backups=1: between polls at most one rotation may be missed entirely only if two happen;
    # every 90 lines is < 2 x 4096 bytes, so nothing is skipped.
    assert got == sent
    mux.feed("web", "stderr", b"new source\n")
    assert [(r[1], r[2], r[3]) for r in follower.poll()] == [("web", b"e", b"new source")]
    mux.close()
    # truncated in place (a user ran `: > app.log`): start over from the top
    os.truncate(tmp_path / "app.log", 0)
    write(tmp_path / "app.log", [(T0, "o", "after truncation")])
    assert [r[3] for r in follower.poll()] == [b"after truncation"]
    follower.close()


@pytest.mark.unit
def test_follow_before_anything_was_written(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"  # not even the folder yet: `logs -f` before the first `up`
    follower = reader.Follower(log_dir, ["gunicorn"], reader.Snapshot())
    assert follower.poll() == []
    mux = LogMux(log_dir, None)
    mux.feed("gunicorn", "stderr", b"Booting worker\n")
    mux.feed("other", "stdout", b"not selected\n")
    assert [(r[1], r[3]) for r in follower.poll()] == [("gunicorn", b"Booting worker")]
    mux.close()
    follower.close()


@pytest.mark.unit
def test_tail_reads_backwards_across_blocks_and_generations(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, None, max_bytes=300_000, backups=5)
    for start in range(0, 30_000, 1000):
        mux.feed("app", "stdout", b"".join(b"n %05d\n" % i for i in range(start, start + 1000)))
    mux.close()
    assert len(list(tmp_path.glob("app.log.*"))) >= 2
    for count in (1, 4999, 12_345, 30_000, 40_000):
        got = [r[3] for r in reader.history(tmp_path, ["app"], count, None, reader.Snapshot())]
        assert got == [b"n %05d" % i for i in range(max(0, 30_000 - count), 30_000)], count


@pytest.mark.unit
def test_follow_loses_nothing_across_several_rotations_between_polls(tmp_path: Path) -> None:
    mux = LogMux(tmp_path, None, max_bytes=4096, backups=4)
    mux.feed("app", "stdout", b"first\n")
    snapshot = reader.Snapshot()
    list(reader.history(tmp_path, ["app"], None, None, snapshot))
    mux.feed("app", "stdout", b"written before the follower opened its file\n")
    for i in range(150):  # rotated away before the follower even starts
        mux.feed("app", "stdout", b"early %04d\n" % i)
    follower = reader.Follower(tmp_path, [], snapshot)
    sent = [b"written before the follower opened its file", *(b"early %04d" % i for i in range(150))]
    got = [r[3] for r in follower.poll()]
    for i in range(600):  # three rotations per poll
        mux.feed("app", "stdout", b"line %04d\n" % i)
        sent.append(b"line %04d" % i)
        if i % 300 == 299:
            got += [r[3] for r in follower.poll()]
    got += [r[3] for r in follower.poll()]
    mux.close()
    follower.close()
    assert got == sent
