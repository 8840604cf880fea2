"""The gunicorn command lines a project declares, read (never run) from its files: the Procfile's
`web:`, systemd units' `ExecStart=`, compose files' `command:` and gunicorn.conf.py / gunicorn.conf
(literal assignments, read with ast). Each setting keeps the file:line it came from, and the exact
text there, so a finding can name the line and its fix the edit."""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from devstack.doctor import procinfo

CONF_NAMES = ("gunicorn.conf.py", "gunicorn.conf")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".devstack", ".tox", "env"}
COMPOSE = re.compile(r"^(docker-)?compose(\.[\w-]+)?\.ya?ml$")


@dataclass
class Site:
    """Where a setting was declared: the file (relative to the project), the line, its text."""

    file: str
    line: int
    text: str  # the exact text that sets it ("-w 3", "workers = 2"); "" when the default applies

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Declared:
    """One declared gunicorn: its settings as gunicorn would merge them (config file, then the
    command line), each with where it was set."""

    kind: str  # Procfile | systemd | compose | config file
    command: Site  # the command line (or the config file, when only it declares gunicorn)
    settings: dict[str, str] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)

    @property
    def worker_class(self) -> str:
        raw = self.settings.get("worker_class", "sync").strip("'\"")
        return procinfo.Gunicorn(0, [], {"worker_class": raw}).worker_class

    @property
    def workers(self) -> int:
        try:
            return int(self.settings.get("workers", "1"))
        except ValueError:
            return 1


def _files(root: Path) -> list[Path]:
    """The project's files that may declare gunicorn: at its root, and one folder down for units
    and compose files (deploy/, systemd/, docker/)."""
    found: list[Path] = []
    try:
        top = sorted(root.iterdir())
    except OSError:
        return []
    for entry in top:
        if entry.is_file() and (
            entry.name == "Procfile" or entry.suffix == ".service" or COMPOSE.match(entry.name)
        ):
            found.append(entry)
        elif entry.is_dir() and entry.name not in SKIP_DIRS and not entry.name.startswith("."):
            try:
                inner = sorted(entry.iterdir())
            except OSError:
                continue
            found += [f for f in inner if f.is_file() and (f.suffix == ".service" or COMPOSE.match(f.name))]
    return found


def _gunicorn_argv(words: list[str]) -> list[str] | None:
    """The arguments after the gunicorn entry point, or None when the command runs no gunicorn."""
    for i, word in enumerate(words):
        if Path(word).name == "gunicorn":
            return words[i + 1 :]
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "gunicorn":
            return words[i + 2 :]
    return None


def _commands(path: Path, rel: str) -> list[tuple[str, int, str]]:
    """(kind, line, command text) of each gunicorn command the file declares."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out: list[tuple[str, int, str]] = []
    if path.name == "Procfile":
        for number, line in enumerate(lines, 1):
            name, sep, command = line.partition(":")
            if sep and name.strip() == "web" and "gunicorn" in command:
                out.append(("Procfile", number, command.strip()))
    elif path.suffix == ".service":
        number = 0
        while number < len(lines):
            line, start = lines[number], number + 1
            while line.rstrip().endswith("\\") and number + 1 < len(lines):
                number += 1
                line = line.rstrip()[:-1] + " " + lines[number].strip()
            number += 1
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == "ExecStart" and "gunicorn" in value:
                out.append(("systemd", start, value.strip().lstrip("-@+!:")))
    else:
        out += [("compose", n, text) for n, text in _compose_commands(lines)]
    return out


def _compose_commands(lines: list[str]) -> list[tuple[int, str]]:
    """`command:` values of a compose file: a string, a folded block (>), or a list."""
    found: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)command:\s*(.*)$", line)
        if match is None or line.lstrip().startswith("#"):
            continue
        indent, value = len(match.group(1)), match.group(2).strip()
        if value in (">", "|", ">-", "|-", ""):
            parts = []
            for more in lines[index + 1 :]:
                if more.strip() and len(more) - len(more.lstrip()) <= indent:
                    break
                text = more.strip()
                parts.append(text[2:] if text.startswith("- ") else text)
            value = " ".join(p for p in parts if p)
        elif value.startswith("["):
            try:
                items = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                continue
            value = shlex.join(str(item) for item in items)
        elif value[:1] in "\"'" and value[-1:] == value[:1]:
            value = value[1:-1]
        if "gunicorn" in value:
            found.append((index + 1, value))
    return found


OPTION_TEXT = {
    "workers": r"(?:-w\s*|--workers[=\s]+)\S+",
    "worker_class": r"(?:-k\s*|--worker-class[=\s]+)\S+",
    "threads": r"--threads[=\s]+\S+",
    "reload": r"--reload(?![-\w])",
    "reload_engine": r"--reload-engine[=\s]+\S+",
    "config": r"(?:-c\s*|--config[=\s]+)\S+",
}


def _site(rel: str, line: int, source_line: str, setting: str) -> Site:
    pattern = OPTION_TEXT.get(setting)
    match = re.search(pattern, source_line) if pattern else None
    return Site(rel, line, match.group(0) if match else "")


def read_config(path: Path, rel: str) -> tuple[dict[str, str], dict[str, Site]]:
    """Literal top-level assignments of a gunicorn config file, never executed."""
    settings: dict[str, str] = {}
    sites: dict[str, Site] = {}
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return settings, sites
    lines = text.splitlines()
    for key, value, node in procinfo.literal_assignments(tree):
        settings[key] = value
        segment = ast.get_source_segment(text, node) or lines[node.lineno - 1].strip()
        sites[key] = Site(rel, node.lineno, segment)
    return settings, sites


def find(root: Path) -> list[Declared]:
    """Every gunicorn the project at root declares."""
    declared: list[Declared] = []
    default_conf = next((root / n for n in CONF_NAMES if (root / n).is_file()), None)
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        for kind, line, command in _commands(path, rel):
            try:
                words = shlex.split(command, comments=False)
            except ValueError:
                words = command.split()
            argv = _gunicorn_argv(words)
            if argv is None:
                continue
            item = Declared(kind, Site(rel, line, command))
            probe: dict[str, str] = {}
            procinfo.parse_args(argv, probe, {}, "")
            conf = root / probe["config"] if "config" in probe else default_conf
            if conf is not None and conf.is_file():
                item.settings, item.sites = read_config(conf, conf.relative_to(root).as_posix())
            mine: dict[str, str] = {}
            procinfo.parse_args(argv, mine, {}, "")
            for key, value in mine.items():
                item.settings[key] = value
                item.sites[key] = _site(rel, line, command, key)
            declared.append(item)
    if not declared and default_conf is not None:
        rel = default_conf.relative_to(root).as_posix()
        settings, sites = read_config(default_conf, rel)
        if settings:
            first = min(sites.values(), key=lambda s: s.line)
            declared.append(Declared("config file", Site(rel, first.line, first.text), settings, sites))
    return declared


SOCKETIO_IMPORT = re.compile(r"^\s*(from\s+flask_socketio\s+import|import\s+(flask_)?socketio\b)", re.M)
MESSAGE_QUEUE = re.compile(r"\bmessage_queue\s*=")


def app_sources(root: Path, limit: int = 400) -> list[Path]:
    """The project's Python files (two folders deep, no venvs), at most `limit`."""
    out: list[Path] = []
    for pattern in ("*.py", "*/*.py", "*/*/*.py"):
        for path in sorted(root.glob(pattern)):
            if any(part in SKIP_DIRS or part.startswith(".") for part in path.relative_to(root).parts[:-1]):
                continue
            out.append(path)
            if len(out) >= limit:
                return out
    return out


def socketio_use(root: Path) -> tuple[str | None, str | None]:
    """(file:line importing Socket.IO, file:line configuring a message_queue), from the source."""
    uses = queue = None
    for path in app_sources(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        rel = path.relative_to(root).as_posix()
        if uses is None and (m := SOCKETIO_IMPORT.search(text)):
            uses = f"{rel}:{text.count(chr(10), 0, m.start()) + 1}"
        if queue is None and (m := MESSAGE_QUEUE.search(text)):
            queue = f"{rel}:{text.count(chr(10), 0, m.start()) + 1}"
    return uses, queue
