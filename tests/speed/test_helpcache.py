"""Which arguments are a help request speed/helpcache.py may answer from its cache, and that a checkout
is never cached. The cache itself, installed as users install it, is tested in
tests/install/test_install.py (test_help_is_kept_and_printed_again_without_typer)."""

from __future__ import annotations

import pytest

from devstack.speed import helpcache


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "asked"),
    [
        (["--help"], True),
        (["-h"], True),
        (["up", "--help"], True),
        (["logs", "-h"], True),
        ([], False),  # bare `devstack`: a usage error that shows the help, exit 2
        (["up"], False),
        (["up", "--config", "--help"], False),  # --help as an option's value
        (["--color", "--help"], False),
        (["up", "--detach", "--help"], False),  # options besides: typer judges them
        (["--help", "up"], False),
    ],
)
def test_only_a_plain_help_request_is_asked(args: list[str], asked: bool) -> None:
    assert helpcache.asked(args) is asked


@pytest.mark.unit
def test_a_checkout_is_never_cached() -> None:
    assert helpcache.cache_key(["--help"], here="/home/me/src/devstack/devstack") is None
