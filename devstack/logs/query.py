"""`--since` and `--grep` -> a record filter. Pure."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from devstack.logs import format as fmt
from devstack.logs.reader import Record

UTC = timezone.utc  # noqa: UP017 - datetime.UTC is 3.11+; the guest agent runs on 3.10

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class QueryError(ValueError):
    pass


def since_stamp(text: str, now: float | None = None) -> bytes:
    """`10m`, `1h30m`, `2d`, `45s`, an ISO time (`2026-01-02T12:00:00Z`; without a zone: local
    time) or a clock time today (`12:30`) -> the UTC stamp records are compared with."""
    now = time.time() if now is None else now
    text = text.strip()
    match = _DURATION.match(text)
    if text and match and any(match.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        moment = now - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds()
        return fmt.Clock().utc(moment)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            clock = datetime.strptime(text, "%H:%M:%S" if text.count(":") == 2 else "%H:%M")
        except ValueError:
            raise QueryError(
                f"--since {text!r}: use a duration (10m, 2h, 1d, 1h30m), an ISO "
                "time (2026-01-02T12:00:00Z) or a clock time (12:30)"
            ) from None
        today = datetime.fromtimestamp(now)
        parsed = today.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0)
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a naive time is the user's local time
    return fmt.Clock().utc(parsed.astimezone(UTC).timestamp())


class RecordFilter:
    """A record filter that also says how far back it reaches (`since`), so the reader can
    seek by time instead of reading everything to throw most of it away."""

    def __init__(self, since: bytes | None, pattern: re.Pattern[bytes] | None) -> None:
        self.since = since
        self.pattern = pattern

    def __call__(self, record: Record) -> bool:
        if self.since is not None and record[0] < self.since:
            return False
        # Match what the user sees: the text without escape codes.
        return self.pattern is None or self.pattern.search(fmt.strip_ansi(record[3])) is not None


def record_filter(since: str | None, grep: str | None, now: float | None = None) -> RecordFilter | None:
    """None when nothing filters (the reader then takes its fast path)."""
    stamp = since_stamp(since, now) if since else None
    pattern = None
    if grep:
        try:
            pattern = re.compile(grep.encode("utf-8", "surrogateescape"))
        except re.error as exc:
            raise QueryError(f"--grep {grep!r} is not a valid regular expression: {exc}") from None
    if stamp is None and pattern is None:
        return None
    return RecordFilter(stamp, pattern)
