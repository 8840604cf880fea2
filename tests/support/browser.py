"""Debian's Chromium for Playwright: one binary path, one set of launch flags, one skip rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/lib/chromium/chromium")
# Without the background-networking flags Chromium keeps dialling out on this closed network.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.needs_nginx,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium chromium-driver"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="pip install playwright (never `playwright install`)",
    ),
]
