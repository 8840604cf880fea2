"""scripts/mutation_score.py: what counts as killed, the sample, and when CI's step fails."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.stack import REPO

pytestmark = pytest.mark.unit


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_score", REPO / "scripts" / "mutation_score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def meta(
    root: Path, module: str, codes: Mapping[str, int | None], errors: dict[str, str] | None = None
) -> None:
    path = root / f"{module}.meta"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": dict(codes), "type_check_error_by_key": errors or {}}))


def test_killed_caught_survived_and_mutmuts_own_type_errors(tmp_path: Path) -> None:
    codes = {"a1": 1, "a2": 37, "a3": 37, "a4": 0, "a5": 33, "a6": 34, "a7": None}
    errors = {
        "a2": 'Argument 1 has incompatible type "None"',
        "a3": 'Attribute "used" already defined on line 9',
    }
    meta(tmp_path, "pkg/a.py", codes, errors)
    score = script().scores(tmp_path)["pkg/a.py"]
    # a3's error is mutmut's trampoline redefining an attribute, not the mutant: it counts as lived.
    assert (score.by_tests, score.by_mypy, score.survived, score.pending) == (1, 1, 3, 1)
    assert score.percent() == 40.0


def test_a_full_run_fails_below_the_minimum_by_its_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta(tmp_path, "a.py", {f"m{i}": (1 if i < 84 else 0) for i in range(100)})
    assert script().main(["--mutants", str(tmp_path), "--min", "85"]) == 1
    assert "below 85 %: a.py" in capsys.readouterr().err
    assert script().main(["--mutants", str(tmp_path), "--min", "84"]) == 0


def test_a_sample_fails_only_when_surely_below(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 80 of 100 sampled: the 95 % interval reaches about 87 %, so 85 % is not ruled out.
    meta(tmp_path, "a.py", {**{f"m{i}": (1 if i < 80 else 0) for i in range(100)}, "rest": None})
    assert script().main(["--mutants", str(tmp_path), "--min", "85"]) == 0
    out = capsys.readouterr().out
    assert "(a sample: 100 of 101 mutants run)" in out
    lo, hi = script().scores(tmp_path)["a.py"].interval()
    assert 70.0 < lo < 72.0 and 86.0 < hi < 88.0
    # 60 of 100: surely below.
    meta(tmp_path, "a.py", {**{f"m{i}": (1 if i < 60 else 0) for i in range(100)}, "rest": None})
    assert script().main(["--mutants", str(tmp_path), "--min", "85"]) == 1


def test_no_results_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert script().main(["--mutants", str(tmp_path)]) == 1
    assert "run `mutmut run` first" in capsys.readouterr().err
