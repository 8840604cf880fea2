"""nginx.conf read back instead of rendered when it was made from the same inputs.

A render costs jinja2's import and the template's compile (~20 ms); the text depends only on
the values passed, the template's text and devstack's version (the key, made by the caller).
Kept in the project's state dir (.devstack/.nginx.conf.cache) beside the file it stands for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from devstack.system import safefs


def rendered(cache: Path, key: str, render: Callable[[], str]) -> str:
    """The text kept in cache when it was rendered from key, else render()'s (then kept)."""
    try:
        saved = json.loads(safefs.read_text(cache))
        if saved.get("key") == key:
            return str(saved["text"])
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        pass  # none yet, or unreadable: rendered again (a planted link is refused, as elsewhere)
    text = render()
    try:
        safefs.write_text(cache, json.dumps({"key": key, "text": text}))
    except FileNotFoundError:  # no state dir yet: the next render writes it
        pass
    return text
