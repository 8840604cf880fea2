"""No input becomes nginx syntax: every devstack.toml key that reaches nginx.conf, fuzzed.

Each example writes one hostile value into a real devstack.toml (and makes the folder it names,
where it names one), then goes the way `up` and the live re-plan both go: config.load, then
plan.build (which checks every value the template renders from). The value is either refused
with one ConfigError line naming the file and the key, or rendered so that the nginx config holds
exactly the intended directives: the same directive tree as the same config with the value
replaced by a plain word, the value itself as one argument where it belongs, and real `nginx -t`
accepting the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.doctor import nginxconf
from devstack.errors import ConfigError
from devstack.project import config as config_mod
from devstack.stack import facts as facts_mod
from devstack.stack import plan, templates
from tests.support.facts import make_facts
from tests.support.stack import EXAMPLE

pytestmark = [pytest.mark.faults, pytest.mark.needs_nginx]

EXAMPLES = int(os.environ.get("DEVSTACK_FUZZ_EXAMPLES", "1500")) // 5

# nginx's syntax, and what a shell, a URL or a path would make of it.
ALPHABET = [*"ab/._-~ \t\n\r;{}\"'\\$#*()|^@%&=,:[]!?`+", "\x00", "\x7f", "é", "\u2028", "\x0b"]
PAYLOADS = [
    "/x/\t{ alias /; }",
    "/x/ { alias /; } location /y/",
    "/x/;\n",
    "/static/;\nlocation /x/ {\n alias /;\n}\n#",
    "a\nlocation /x/ { alias /; }\n#",
    '"; alias /; "',
    "'; alias /; '",
    "$document_root",
    "${x}",
    "a b",
    "a;b",
    "a{b}",
    "a#b",
    "\\",
    'a\\"b',
    "~ .*",
    "@app",
    "/../",
    "..",
    ".",
    "/",
    "localhost; server_name *",
    "evil.example",
    "127.0.0.1:80 default_server",
    "[::1]:5000",
]
hostile = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(st.sampled_from(ALPHABET), min_size=1, max_size=24),
    st.tuples(st.sampled_from(PAYLOADS), st.text(st.sampled_from(ALPHABET), max_size=8)).map("".join),
)


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def make_folder(root: Path, name: str) -> None:
    """The folder a hostile static.dir names, when the filesystem can hold that name."""
    try:
        (root / name).mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError):
        pass


# key -> (devstack.toml lines for the hostile value, setup on disk)
def _static_url(v: str) -> str:
    return f"[static]\nurl = {toml_string(v)}\n"


def _static_dir(v: str) -> str:
    return f"[static]\ndir = {toml_string(v)}\n"


def _extra_url(v: str) -> str:
    return f'[[static.extra]]\nurl = {toml_string(v)}\ndir = "static/css"\n'


def _extra_dir(v: str) -> str:
    return f'[[static.extra]]\nurl = "/bp/static/"\ndir = {toml_string(v)}\n'


def _listen(v: str) -> str:
    return f"[server]\nlisten = {toml_string(v)}\napp_port = 5001\n"


def _hosts(v: str) -> str:
    return f"[server]\nhosts = [{toml_string(v)}]\n"


KEYS: dict[str, tuple[Callable[[str], str], bool]] = {
    "static.url": (_static_url, False),
    "static.dir": (_static_dir, True),
    "static.extra.url": (_extra_url, False),
    "static.extra.dir": (_extra_dir, True),
    "server.listen": (_listen, False),
    "server.hosts": (_hosts, False),
}


class Tally:
    rejected = 0
    rendered = 0
    errors: list[str] = []  # noqa: RUF012 (one run's sample)


def shape(conf: str) -> list[tuple[int, str, int]]:
    """The directive tree as (depth, name, number of arguments): what a value must not change."""
    tree = nginxconf.parse_text({"nginx.conf": conf}, "nginx.conf")
    out: list[tuple[int, str, int]] = []

    def walk(items: list[nginxconf.Directive], depth: int) -> None:
        for item in items:
            out.append((depth, item.name, len(item.args)))
            if item.block is not None:
                walk(item.block, depth + 1)

    walk(tree.block or [], 0)
    return out


def args_of(conf: str, name: str) -> list[list[str]]:
    tree = nginxconf.parse_text({"nginx.conf": conf}, "nginx.conf")
    return [d.args for d in tree.walk() if d.name == name]


def render_with(config: config_mod.Config, host: facts_mod.HostFacts, replace: str) -> tuple[str, str]:
    """nginx.conf from these values, and from the same values with `replace` made a plain word."""
    values = plan.nginx_values(config, host, sendfile=True)
    plain: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            plain[key] = value.replace(replace, "PLAIN")
        elif isinstance(value, list):
            plain[key] = [
                {k: v.replace(replace, "PLAIN") for k, v in item.items()}
                if isinstance(item, dict)
                else item.replace(replace, "PLAIN")
                for item in value
            ]
        else:
            plain[key] = value
    return templates.render("nginx.conf.j2", **values), templates.render("nginx.conf.j2", **plain)


def one_line(exc: ConfigError, path: Path) -> None:
    message = str(exc)
    assert message.strip() and "\n" not in message and "\r" not in message, repr(message)
    assert path.name in message and " — " in message, message


def nginx_accepts(conf: str, prefix: Path) -> str:
    nginx = facts_mod.find_nginx(os.environ)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / name).mkdir(parents=True, exist_ok=True)
    (prefix / "nginx-test.conf").write_text(conf, encoding="utf-8", errors="surrogateescape")
    result = subprocess.run(
        [nginx, "-p", str(prefix), "-c", "nginx-test.conf", "-e", "stderr", "-t", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return "" if result.returncode == 0 else result.stderr.strip()


def check(root: Path, key: str, value: str) -> None:
    lines, is_folder = KEYS[key]
    if is_folder:
        make_folder(root, value)
    path = root / "devstack.toml"
    path.write_text('[app]\nwsgi = "app:app"\n' + lines(value), encoding="utf-8", errors="surrogatepass")
    try:
        config = config_mod.load(path)
        host = make_facts(config, mime_types=facts_mod.nginx_mime_types() or "/etc/nginx/mime.types")
        the_plan = plan.build(config, host)
        conf = the_plan.nginx_conf
    except ConfigError as exc:
        one_line(exc, path)
        Tally.rejected += 1
        return
    Tally.rendered += 1
    # The tree is the one a plain word in the value's place gives: no directive, block or
    # argument was added or split by the value.
    # (A value of plain characters only, "/static/" or "css", cannot be syntax: it may switch
    # the template, "/" does, so it is not replaced.)
    if not re.fullmatch(r"[A-Za-z0-9/._~@+-]*", value):
        hostile_conf, plain_conf = render_with(config, host, value)
        assert hostile_conf == conf
        assert shape(conf) == shape(plain_conf), (key, value)
    # The value, where it belongs, is one whole argument.
    names = plan.server_names(config)
    assert args_of(conf, "server_name")[0] == names, (key, value)
    locations = {a[-1] for a in args_of(conf, "location")}
    assert config.static.url in locations or not host.has_static or config.static.at_root
    for url, folder in host.extra_static:
        assert url in locations
        assert [f"{folder}/"] in args_of(conf, "alias"), (key, value)
    expected_folders = {f"{host.static_alias}/"} | {f"{f}/" for _, f in host.extra_static}
    for alias in args_of(conf, "alias"):
        assert alias[0] in expected_folders, (key, value, alias)
    for root_arg in args_of(conf, "root"):
        assert root_arg == [str(host.static_alias)], (key, value, root_arg)
    problem = nginx_accepts(conf, host.state_dir)
    assert not problem, (key, value, problem)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ngxfuzz") / "chat"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    (root / ".devstack").mkdir()
    return root


@pytest.mark.parametrize("key", list(KEYS))
def test_no_value_becomes_nginx_syntax(fuzz_root: Path, key: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(hostile)
    def run(value: str) -> None:
        check(fuzz_root, key, value)

    run()
    # Both halves were reached: hostile values are refused, and plain ones are rendered.
    assert Tally.rejected > 0


def test_the_project_folder_name_reaches_nginx_conf_quoted(tmp_path: Path) -> None:
    """The project's own path is in nginx.conf (prefix, pid, temp folders, the static folder):
    a folder name with spaces, quotes, braces, ; # or $ stays one argument each time."""
    accepted = 0
    for index, name in enumerate(['my "proj"; {x}', "a#b $x", "two  spaces", "back\\slash", "it's"]):
        root = tmp_path / str(index) / name
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
        (root / ".devstack").mkdir()
        config = config_mod.load(root / "devstack.toml")
        host = make_facts(config, mime_types=facts_mod.nginx_mime_types() or "/etc/nginx/mime.types")
        conf = plan.build(config, host).nginx_conf
        plain = conf.replace(str(root), str(tmp_path / "plain"))  # the raw text: any leak shows
        assert shape(conf) == shape(plain.replace(name, "PLAIN")), name
        assert [str(host.state_dir / "nginx.pid")] in args_of(conf, "pid")
        assert [f"{host.static_alias}/"] in args_of(conf, "alias")
        assert not nginx_accepts(conf, host.state_dir), name
        accepted += 1
    assert accepted == 5


@pytest.mark.unit
def test_a_newline_in_the_project_path_is_one_line_not_directives(tmp_path: Path) -> None:
    root = tmp_path / "evil\nlocation /x/ { alias /; }\n#"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    with pytest.raises(ConfigError) as caught:
        config_mod.load(root / "devstack.toml")  # its static folder's path holds the newline
    one_line(caught.value, root / "devstack.toml")
    assert "control character" in str(caught.value)
    # The planner's own guard, for a path that reaches it another way (the state folder).
    plain = tmp_path / "plain"
    shutil.copytree(EXAMPLE, plain, ignore=shutil.ignore_patterns(".devstack", "__pycache__"))
    config = config_mod.load(plain / "devstack.toml")
    with pytest.raises(ConfigError) as caught:
        plan.build(config, make_facts(config, state_dir=root / ".devstack"))
    one_line(caught.value, plain / "devstack.toml")
    assert "the project folder" in str(caught.value)


@pytest.mark.unit
def test_a_comment_cannot_be_ended_by_a_value() -> None:
    assert templates.nginx_comment("a\nlocation / {}\r\x00") == "a?location / {}??"
