"""logs/query.py to the letter: every --since form, the error lines, the record filter."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from devstack.logs import format as fmt
from devstack.logs.query import QueryError, RecordFilter, record_filter, since_stamp

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def utc(seconds: float) -> bytes:
    return fmt.Clock().utc(seconds)


@pytest.fixture
def in_utc_plus_2() -> Iterator[None]:
    """A local zone that is not UTC, so local and UTC times differ by two hours."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "EET-2"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("45s", 45),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        (" 10m ", 600),
    ],
)
def test_durations(text: str, ago: int) -> None:
    assert since_stamp(text, NOW) == utc(NOW - ago)


def test_iso_times_with_and_without_a_zone(in_utc_plus_2: None) -> None:
    assert since_stamp("2026-01-02T03:04:05Z", NOW) == b"2026-01-02T03:04:05.000000Z"
    assert since_stamp("2026-01-02T03:04:05-01:00", NOW) == b"2026-01-02T04:04:05.000000Z"
    assert since_stamp("2026-01-02T03:04:05", NOW) == b"2026-01-02T01:04:05.000000Z"  # local time


def test_clock_times_are_today_local(in_utc_plus_2: None) -> None:
    today = datetime.fromtimestamp(NOW).strftime("%Y-%m-%d")  # local (UTC+2) date
    assert since_stamp("12:30", NOW) == f"{today}T10:30:00.000000Z".encode()
    assert since_stamp("12:30:15", NOW) == f"{today}T10:30:15.000000Z".encode()


@pytest.mark.parametrize("text", ["", "yesterday", "10x", "m", "25:00", "1:2:3:4"])
def test_anything_else_is_one_line_naming_the_forms(text: str) -> None:
    with pytest.raises(QueryError) as raised:
        since_stamp(text, NOW)
    assert str(raised.value) == (
        f"--since {text!r}: use a duration (10m, 2h, 1d, 1h30m), an ISO "
        "time (2026-01-02T12:00:00Z) or a clock time (12:30)"
    )


def test_now_defaults_to_the_clock() -> None:
    before = utc(time.time() - 60)
    assert before <= since_stamp("1m") <= utc(time.time() - 60)


def test_no_filter_when_nothing_filters() -> None:
    assert record_filter(None, None) is None
    assert record_filter("", "") is None


def test_since_filters_by_stamp_inclusively() -> None:
    keep = record_filter("10s", None, now=NOW)
    assert isinstance(keep, RecordFilter)
    assert (keep.since, keep.pattern) == (utc(NOW - 10), None)
    assert keep((utc(NOW - 10), "app", b"o", b"at the edge"))
    assert keep((utc(NOW), "app", b"o", b"later"))
    assert not keep((utc(NOW - 11), "app", b"o", b"before"))


def test_grep_matches_the_text_without_escape_codes() -> None:
    keep = record_filter(None, "red alert", now=NOW)
    assert keep is not None and keep.since is None
    assert keep((utc(NOW), "app", b"o", b"a \x1b[31mred\x1b[0m alert"))
    assert not keep((utc(NOW), "app", b"o", b"all clear"))
    both = record_filter("10s", "x", now=NOW)
    assert both is not None
    assert not both((utc(NOW - 20), "app", b"o", b"x"))
    assert both((utc(NOW), "app", b"o", b"x"))
    assert not both((utc(NOW), "app", b"o", b"y"))


def test_grep_takes_undecodable_bytes_as_the_shell_gave_them() -> None:
    keep = record_filter(None, b"caf\xe9".decode("utf-8", "surrogateescape"))
    assert keep is not None and keep((utc(NOW), "app", b"o", b"un caf\xe9"))


def test_a_bad_regular_expression_is_one_line() -> None:
    with pytest.raises(QueryError) as raised:
        record_filter(None, "([unclosed")
    assert str(raised.value).startswith("--grep '([unclosed' is not a valid regular expression: ")
