"""Static at the site root (static.url = "/"): what nginx never serves from disk there.

The folder may then be the project itself (Flask's static_folder=".", static_url_path=""), so
nginx.conf sends these paths to the app instead of reading them: every dot file and everything
in a dot folder (.env, .git/, .devstack/), the project's code and its config. The readiness
proof, doctor's sample file and the freshness watcher leave them alone for the same reason.
"""

from __future__ import annotations

from pathlib import PurePosixPath

SUFFIXES = ("py", "pyc", "pyo", "toml", "cfg", "ini", "lock", "db", "sqlite", "sqlite3", "log")
NAMES = ("Procfile",)

# The same rule as one nginx regex (case-insensitive location ~*), quoted by the template.
NGINX_REGEX = "(^|/)\\.|\\.(" + "|".join(SUFFIXES) + ")$|(^|/)(" + "|".join(NAMES) + ")$"


def is_dot_path(rel: str) -> bool:
    """A dot file, or a path in a dot folder: never served from any static folder (nginx.conf
    answers 404 under a URL prefix, and sends it to the app at the site root)."""
    return any(part.startswith(".") for part in PurePosixPath(rel).parts)


def kept_from_disk(rel: str) -> bool:
    """rel (a path inside the static folder, "/"-separated) goes to the app, never from disk."""
    path = PurePosixPath(rel)
    if is_dot_path(rel):
        return True
    suffix = path.suffix.lower().lstrip(".")
    return suffix in SUFFIXES or path.name.lower() in (n.lower() for n in NAMES)
