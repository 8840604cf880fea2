"""What a browser may do with a response, told from its headers alone (RFC 9111). Pure logic.

Used by the freshness watcher ("fresh, but the browser may keep the old copy") and by doctor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# nginx: "<hex mtime>-<hex size>"; Werkzeug (Flask): "<mtime float>-<size>-<adler32 of the name>".
NGINX_ETAG = re.compile(r'^(W/)?"[0-9a-f]+-[0-9a-f]+"$')
WERKZEUG_ETAG = re.compile(r'^(W/)?"\d+(\.\d+)?-\d+-\d+"$')


def cache_control(headers: dict[str, str]) -> dict[str, str]:
    """Cache-Control directives, lower-cased names -> value ('' for a bare directive)."""
    found: dict[str, str] = {}
    for part in (headers.get("cache-control") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.lower()] = value.strip().strip('"')
    return found


def http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def etag_kind(etag: str | None) -> str:
    """nginx | werkzeug | other | none — who made this ETag (nginx hides the upstream Server)."""
    if not etag:
        return "none"
    if WERKZEUG_ETAG.match(etag.strip()):
        return "werkzeug"
    if NGINX_ETAG.match(etag.strip()):
        return "nginx"
    return "other"


@dataclass(frozen=True)
class Freshness:
    """How long a browser may reuse a stored copy without asking the server."""

    kind: str  # none | explicit | heuristic
    seconds: float  # 0 when the browser must ask (or may not store at all)
    header: str  # the header that decides, as sent
    stored: bool  # False with no-store: nothing to go stale

    @property
    def keeps_old_copy(self) -> bool:
        return self.seconds > 0


def freshness(headers: dict[str, str]) -> Freshness:
    cc = cache_control(headers)
    shown_cc = f"Cache-Control: {headers['cache-control']}" if "cache-control" in headers else ""
    if "no-store" in cc:
        return Freshness("none", 0.0, shown_cc, False)
    if "no-cache" in cc:
        return Freshness("none", 0.0, shown_cc, True)
    if "max-age" in cc:  # a browser cache is private: s-maxage does not apply to it
        try:
            age = float(cc["max-age"])
        except ValueError:
            age = 0.0
        return Freshness("explicit" if age > 0 else "none", max(age, 0.0), shown_cc, True)
    date = http_date(headers.get("date"))
    if "expires" in headers:
        expires = http_date(headers.get("expires"))
        ahead = (expires - date) if (expires is not None and date is not None) else 0.0
        return Freshness(
            "explicit" if ahead > 0 else "none", max(ahead, 0.0), f"Expires: {headers['expires']}", True
        )
    modified = http_date(headers.get("last-modified"))
    if modified is not None and date is not None and "cache-control" not in headers:
        # RFC 9111 4.2.2: caches may use 10 % of the time since Last-Modified.
        window = max(date - modified, 0.0) * 0.1
        return Freshness("heuristic", window, f"Last-Modified: {headers['last-modified']}", True)
    return Freshness("none", 0.0, shown_cc, True)


def human_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def browser_warning(headers: dict[str, str]) -> str:
    """One sentence when these headers let a browser keep an old copy; '' when they do not."""
    fresh = freshness(headers)
    if fresh.kind == "explicit":
        return (
            f"{fresh.header} lets a browser keep the old copy for "
            f"{human_seconds(fresh.seconds)} without asking"
        )
    if fresh.kind == "heuristic" and fresh.seconds >= 1:
        return (
            f"{fresh.header} with no Cache-Control lets a browser guess a freshness of about "
            f"{human_seconds(fresh.seconds)} (10 % of the file's age) and keep the old copy"
        )
    return ""
