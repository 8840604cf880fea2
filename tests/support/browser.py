"""Debian's Chromium for Playwright: one binary path, one set of launch flags, one skip rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support.require import needs, simulated_missing

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
    needs(
        CHROMIUM.exists() and "chromium" not in simulated_missing(),
        f"Debian's Chromium is not at {CHROMIUM} (apt-get install chromium chromium-driver)",
    ),
    needs(
        importlib.util.find_spec("playwright") is not None,
        "pip install playwright (never `playwright install`)",
    ),
]
