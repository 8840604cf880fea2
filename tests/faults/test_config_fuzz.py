"""Property-based fuzzing of the config loader: every document gives a Config or one line.

Documents are built from the real schema (known tables and keys, so most of them get deep into
validation) with hostile values and stray keys, plus raw mutations of a valid file. A sample of
the rejected ones goes through the real CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.errors import ConfigError
from devstack.project import config as config_mod
from tests.support.stack import EXAMPLE, cli_env

pytestmark = [pytest.mark.faults]

EXAMPLES = int(os.environ.get("DEVSTACK_FUZZ_EXAMPLES", "1500"))
CLI_SAMPLE = int(os.environ.get("DEVSTACK_FUZZ_CLI_SAMPLE", "25"))

SCHEMA: dict[str, list[str]] = {
    "app": ["wsgi", "dir", "worker", "threads", "reload", "reload_engine", "reload_extra", "env"],
    "static": ["dir", "url", "polling"],
    "server": ["listen", "app_port", "autoindex", "sendfile", "proxy_read_timeout"],
    "logs": ["max_bytes", "backups"],
    "vm": ["box", "provider", "driver", "cpus", "memory", "sync", "host_port", "guest_path", "boot_timeout"],
    "processes": ["css", "js", "gunicorn", "nginx", "bad name", "x" * 40],
}
# Values near the edges of what the loader accepts.
PLAUSIBLE = [
    "app:app",
    "app",
    "app:create_app()",
    ".",
    "static",
    "/static/",
    "/",
    "/st atic/",
    "/a/../b/",
    "gthread",
    "gevent",
    "eventlet",
    "auto",
    "on",
    "off",
    "never",
    "always",
    "127.0.0.1:5000",
    "localhost:0",
    "[::1]:5000",
    "0.0.0.0:70000",
    ":5000",
    "rsync",
    "libvirt",
    "qemu",
    "/vagrant",
    "vagrant",
    "",
    " ",
    "npm run watch",
    "../..",
    "/nonexistent/dir",
    "static\\x",
    "\x00",
    "a\nb",
    "ä",
    "🙂" * 3,
]

text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
scalars = st.one_of(
    st.sampled_from(PLAUSIBLE),
    text,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 4096, 65535, 65536, 2**40, 2**40 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=8,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for table in draw(st.lists(st.sampled_from(list(SCHEMA)), max_size=6, unique=True)):
        keys = draw(st.lists(st.sampled_from(SCHEMA[table]), max_size=5, unique=True))
        body = {key: draw(values) for key in keys}
        if draw(st.integers(0, 9)) == 0:
            body[draw(text)] = draw(values)  # a stray key
        doc[table] = body if draw(st.integers(0, 19)) else draw(values)  # rarely not a table
    if draw(st.integers(0, 9)) == 0:
        doc[draw(text)] = draw(values)  # a stray section
    return doc


def toml_string(value: str) -> str:
    # JSON escapes are TOML escapes too, except DEL, which TOML wants escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(doc: dict[str, Any]) -> str:
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for key, body in doc.items():
        if isinstance(body, dict):
            lines.append(f"[{toml_string(key)}]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


BASE = (EXAMPLE / "devstack.toml").read_text(encoding="utf-8")


@st.composite
def mutations(draw: st.DrawFn) -> str:
    """The example config with a few bytes inserted, deleted or replaced."""
    doc = BASE
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(doc)))
        cut = draw(st.integers(0, 6))
        insert = draw(
            st.one_of(
                text,
                st.sampled_from(["[", "]", '"', "=", "\n", "[app]", "'''", '"""', "\\", "#", ".", "\x00"]),
            )
        )
        doc = doc[:at] + insert + doc[at + cut :]
    return doc


class Tally:
    cases = 0
    accepted = 0
    rejected: list[str] = []  # noqa: RUF012 (one run's sample)


def check(path: Path, text_doc: str) -> None:
    path.write_text(text_doc, encoding="utf-8", errors="surrogatepass")
    Tally.cases += 1
    try:
        config_mod.load(path)
        Tally.accepted += 1
    except ConfigError as exc:
        message = str(exc)
        assert message.strip(), "empty error"
        assert "\n" not in message and "\r" not in message, repr(message)
        assert path.name in message, message
        assert " — " in message, f"no fix in {message!r}"
        if len(Tally.rejected) < 400:
            Tally.rejected.append(text_doc)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example app: documents that pass the schema still have their paths checked."""
    root = tmp_path_factory.mktemp("fuzz") / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    return root


def test_schema_shaped_documents_never_crash(fuzz_dir: Path) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(documents())
    def run(doc: dict[str, Any]) -> None:
        check(fuzz_dir / "devstack.toml", to_toml(doc))

    run()


def test_mutated_files_never_crash(fuzz_dir: Path) -> None:
    @settings(
        max_examples=EXAMPLES // 2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(mutations())
    def run(doc: str) -> None:
        check(fuzz_dir / "devstack.toml", doc)

    run()


def test_rejected_sample_through_the_real_cli(fuzz_dir: Path) -> None:
    import subprocess
    import sys

    sample = Tally.rejected[:: max(1, len(Tally.rejected) // CLI_SAMPLE)][:CLI_SAMPLE]
    if not sample:
        pytest.skip("run with the fuzz tests: they collect the rejected documents")
    for doc in sample:
        (fuzz_dir / "devstack.toml").write_text(doc, encoding="utf-8", errors="surrogatepass")
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "up"],
            cwd=fuzz_dir,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 1, (doc, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (doc, result.stderr)
        assert lines[0].startswith("devstack: error: "), result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert result.stdout == ""
