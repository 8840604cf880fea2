"""`logs -n`, `--since` and `--grep` read only what they need (backwards, seek by time) and
still show exactly what reading everything and filtering would show."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from devstack.logs import format as fmt
from devstack.logs import reader, store
from devstack.logs.query import record_filter

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def build(log_dir: Path, seed: int) -> float:
    """Two sources over several generations; long and short lines, a few lines not ours."""
    rng = random.Random(seed)
    clock = fmt.Clock()
    when = T0
    for source in ("app", "web"):
        generations = rng.randint(1, 4)
        for gen in range(generations, -1, -1):
            name = f"{source}.log" + (f".{gen}" if gen else "")
            with open(log_dir / name, "wb") as handle:
                for i in range(rng.randint(0, 1500)):
                    when += rng.random() * 0.5
                    if rng.random() < 0.01:
                        handle.write(b"not a record of ours %d\n" % i)  # edited by hand
                        continue
                    text = b"%s-%d-%d " % (source.encode(), gen, i) + b"x" * rng.choice((0, 10, 300, 5000))
                    handle.write(clock.utc(when) + b" o " + text + b"\n")
        when = T0 + rng.random() * 10  # the second source overlaps the first in time
    return when


def everything(log_dir: Path, chosen: list[str]) -> list[reader.Record]:
    streams = []
    for source in chosen:
        lines = [ln for path in store.generations(log_dir, source) for ln in reader._file_lines(path)]
        streams.append(list(reader._records(lines, source)))
    return sorted((r for s in streams for r in s), key=lambda r: r[0])


@pytest.mark.parametrize("seed", range(6))
def test_fast_paths_agree_with_reading_everything(tmp_path: Path, seed: int) -> None:
    end = build(tmp_path, seed)
    rng = random.Random(seed)
    chosen = reader.sources(tmp_path)
    every = everything(tmp_path, chosen)
    for _ in range(6):
        ago = rng.choice((1, 30, 300, 900, 10_000))
        grep = rng.choice((None, "-1-", "x{300}", "^web", "nothing-matches"))
        lines = rng.choice((None, 1, 20, 500))
        keep = record_filter(f"{ago}s", grep, now=end)
        got = list(reader.history(tmp_path, chosen, lines, keep, reader.Snapshot()))
        want = [r for r in every if keep is None or keep(r)]
        if lines is not None:
            want = want[-lines:] if lines else []
        # Same records; the merge may order records with equal stamps differently.
        assert sorted(got) == sorted(want), (ago, grep, lines)
        assert [r[0] for r in got] == sorted(r[0] for r in got)
