"""The fast path for up/status/logs/down calls the commands exactly as typer's parsing does."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.cli import app as cli
from devstack.cli import plain
from devstack.commands import down, logs, status, up
from devstack.speed import fastpath

pytestmark = pytest.mark.unit

SAME = [
    ["up"],
    ["up", "--detach"],
    ["up", "-d", "--color", "never", "-c", "x.toml"],
    ["up", "--timeout", "30", "--vm"],
    ["up", "--timeout=2.5", "--daemon", "--color=always"],
    ["up", "--timeout", "1"],  # typer's min=1 includes 1
    ["up", "--timeout", "1."],
    ["status"],
    ["status", "--json"],
    ["status", "-c", "some/dir"],
    ["status", "--config=some/devstack.toml", "--json"],
    ["down"],
    ["down", "--config", "x.toml"],
    ["down", "--halt"],
    ["down", "--destroy", "-c", "y"],
    ["logs"],
    ["logs", "-n", "20"],
    ["logs", "-n20"],
    ["logs", "--lines=0"],
    ["logs", "gunicorn", "nginx", "-f"],
    ["logs", "-f", "gunicorn", "--since", "10m", "--grep", "GET /api"],
    ["logs", "--grep=-x", "--no-prefix", "--json"],
    ["logs", "--color", "never", "web", "--since=12:30"],
    ["logs", "--since", ""],
    ["logs", "-"],  # a lone dash is a name, as click reads it
]
FALLBACK = [
    [],
    ["up", "--help"],
    ["up", "--no-color"],
    ["up", "--timeout", "0.5"],
    ["up", "--timeout", "-3"],
    ["up", "--timeout", "1e3"],
    ["up", "--timeout", "nan"],
    ["up", "--timeout", "1.2.3"],
    ["up", "--timeout", "0.99"],
    ["up", "-dc", "x"],
    ["up", "app"],
    ["status", "--help"],
    ["status", "-h"],
    ["status", "extra"],
    ["logs", "-n", "x"],
    ["logs", "-n", "-1"],
    ["logs", "-n"],
    ["logs", "--bogus"],
    ["logs", "--"],
    ["logs", "--color", "sometimes"],
    ["logs", "--json=1"],
    ["down", "--halt=yes"],
    ["logs", "-fn20"],
    ["logs", "-n=5"],  # click reads the value "=5": typer's error, not 5
    ["up", "--config="],  # an empty path: typer's call
    ["status", "-c", ""],
]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for name, module in (("up", up), ("status", status), ("down", down), ("logs", logs)):

        def record(*args: Any, _name: str = name, **kwargs: Any) -> int:
            seen.append((_name, args, kwargs))
            return 0

        monkeypatch.setattr(module, "run", record)
    return seen


@pytest.mark.parametrize("argv", SAME, ids=[" ".join(a) or "-" for a in SAME])
def test_both_paths_call_the_command_alike(argv: list[str], calls: list[Any]) -> None:
    assert plain.run(argv) == 0
    cli.app(args=argv, prog_name="devstack", standalone_mode=False)
    assert len(calls) == 2
    assert calls[0] == calls[1]


@pytest.mark.parametrize("argv", FALLBACK, ids=[" ".join(a) or "-" for a in FALLBACK])
def test_anything_else_is_left_to_typer(argv: list[str], calls: list[Any]) -> None:
    assert fastpath.parse(argv) is None
    assert calls == []


@pytest.mark.parametrize(
    ("argv", "forks"),
    [
        (["up", "--detach"], True),
        (["up", "-d", "-c", "x.toml"], True),
        (["up"], False),
        (["up", "--detach", "--vm"], False),  # the VM's own detach (vm/run.py)
        (["up", "--detach", "--daemon"], False),  # already the daemon
        (["up", "--vm"], False),
        (["status"], False),
        (["down"], False),
    ],
)
def test_only_a_plain_local_up_detach_forks_before_imports(argv: list[str], forks: bool) -> None:
    parsed = fastpath.parse(argv)
    assert parsed is not None
    assert fastpath.detaches(parsed) is forks


def test_detaches_reads_the_parsed_values_not_the_words() -> None:
    assert fastpath.detaches(("up", {"detach": True})) is True
    assert fastpath.detaches(("up", {"detach": True, "vm": True})) is False
    assert fastpath.detaches(("up", {"detach": True, "daemon": True})) is False
    assert fastpath.detaches(("logs", {"detach": True})) is False
    assert fastpath.detaches(("up", {})) is False
