"""The fast path's parse agrees with typer's for generated argument lists, or hands over.

For any argument list built from speed/fastpath.py's option table (every command's options, in
long, `--opt=value` and `-n5` forms, repeated, mixed with `--`, `-`, empty strings, non-ASCII
digits and other odd values): either the fast path returns None and typer parses it, or typer
accepts it too and both call the same command function with the same arguments.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devstack import speed
from devstack.cli import app as cli
from devstack.cli import plain
from devstack.commands import down, logs, status, up
from devstack.speed import fastpath

pytestmark = pytest.mark.unit

Call = tuple[str, tuple[Any, ...], dict[str, Any]]

ALL_OPTIONS = sorted({option for options, _ in fastpath.COMMANDS.values() for option in options})
ODD = ["--", "-", "", "--help", "-h", "--no-color", "-dc", "-fn20", "--lines5", "---lines", "--Lines", "-N"]
VALUES = [
    *["0", "1", "5", "20", "007", " 5", "5 ", "1.0", "2.5", "1.", ".5", "0.5", "-1", "+3", "1_0"],
    *["1e3", "nan", "inf", "-inf", "0x10", "five", "1.2.3", "1..5", "0.99", "1"],
    # digits str.isdigit() takes and typer may not: Arabic-Indic, fullwidth, superscript, circled,
    # Bengali, mathematical bold
    *["٣", "٣٠", "\uff12", "\uff11.\uff15", "²", "①", "৫", "\U0001d7d3"],
    *["auto", "always", "never", "Never", "sometimes", "gunicorn", "nginx", "10m", "12:30", "x.toml"],
    *["-x", "a=b", "=", " ", "é", "\t"],
]
value = st.one_of(st.sampled_from(VALUES), st.text(max_size=3))


GOOD = {
    "int>=0": ["0", "5", "20", "007", " 5"],
    "float>=1": ["1", "2.5", "30", "1.0", "1."],
    "color": ["auto", "always", "never"],
    "path": ["x.toml", "some/dir", ".", "-c"],
    "str": ["10m", "12:30", "GET /api", "-x", ""],
}


@st.composite
def unit(draw: st.DrawFn, command: str) -> list[str]:
    """One option with its value (if it takes one) as a user might write it, or an odd token."""
    options, _ = fastpath.COMMANDS[command]
    kind_of = dict(options.values())
    pick = draw(st.sampled_from(["own"] * 6 + ["foreign", "odd", "name"]))
    if pick == "foreign":
        return [draw(st.sampled_from(ALL_OPTIONS))]
    if pick == "odd":
        return [draw(st.sampled_from(ODD))]
    if pick == "name":
        return [draw(st.sampled_from(["gunicorn", "nginx.access", "web", "-", "a=b", "٣"]))]
    option = draw(st.sampled_from(sorted(options)))
    kind = kind_of[options[option][0]]
    if kind == "flag":
        return [option] if draw(st.integers(0, 9)) else [f"{option}={draw(value)}"]
    v = draw(
        st.one_of(st.sampled_from(GOOD[kind]), value) if draw(st.booleans()) else st.sampled_from(GOOD[kind])
    )
    forms = [[option, v], [f"{option}={v}"], [option]]
    if len(option) == 2:
        forms.append([option + v])  # -n5
    return draw(st.sampled_from(forms))


argvs = st.sampled_from(sorted(fastpath.COMMANDS)).flatmap(
    lambda command: st.lists(unit(command), max_size=5).map(
        lambda units: [command, *(token for u in units for token in u)]
    )
)


def fast_call(argv: list[str]) -> Call | None:
    calls: list[Call] = []
    with recording(calls):
        code = plain.run(argv)
    if code is None:
        assert calls == []
        return None
    assert len(calls) == 1
    return calls[0]


def typer_call(argv: list[str]) -> Call | None:
    """The call typer makes, or None when typer refuses the arguments (a usage error)."""
    calls: list[Call] = []
    with recording(calls):
        try:
            cli.app(args=argv, prog_name="devstack", standalone_mode=False)
        except typer.Exit:
            pass  # --help
        except typer.TyperException:  # usage errors: bad value, unknown option, missing value
            assert calls == []
            return None
    return calls[0] if calls else None


class recording:
    """Each command's run() records its arguments; the head start of `up` is not parsing's
    business (plain.run asks for it) and stays off."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls
        self.patch = pytest.MonkeyPatch()

    def __enter__(self) -> None:
        for name, module in (("up", up), ("status", status), ("down", down), ("logs", logs)):

            def record(*args: Any, _name: str = name, **kwargs: Any) -> int:
                self.calls.append((_name, args, kwargs))
                return 0

            self.patch.setattr(module, "run", record)
        self.patch.setattr(speed, "before_up", lambda config, supervises_here: None)
        self.patch.setattr(speed, "discard", lambda: None)

    def __exit__(self, *exc: object) -> None:
        self.patch.undo()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=argvs)
@example(argv=["logs", "-n", "٣"])
@example(argv=["up", "--timeout", "\uff12"])
@example(argv=["logs", "-n٣"])
@example(argv=["logs", "--lines=²"])
@example(argv=["up", "--timeout", "\U0001d7d3"])
@example(argv=["up", "-c", ""])
@example(argv=["logs", "--grep", "-x"])
@example(argv=["logs", "-n", "5", "--lines", "7", "-n3"])
@example(argv=["status", "--json", "--json"])
@example(argv=["logs", "--", "-n"])
@example(argv=["logs", ""])
def test_the_fast_path_agrees_with_typer_or_hands_over(argv: list[str]) -> None:
    fast = fast_call(argv)
    if fast is None:
        return  # typer parses it, as `devstack` does
    assert typer_call(argv) == fast, f"fast path and typer disagree on {argv!r}"


def test_the_generator_reaches_both_outcomes() -> None:
    """The property is not vacuous: the pool yields lists the fast path takes and ones it hands over."""
    taken = [["logs", "-n5"], ["up", "--timeout=2.5", "-d"], ["logs", "--grep", "-x", "web"]]
    assert all(fastpath.parse(argv) is not None for argv in taken)
    assert all(fastpath.parse(argv) is None for argv in (["logs", "-n", "٣"], ["up", "--timeout", "\uff12"]))
