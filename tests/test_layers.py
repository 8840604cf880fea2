"""The package layout is the architecture: each package imports only from the layers below it
(docs/architecture.md has the map), and the start-up speed room is entered through its one
interface, `devstack.speed`. Read from the source's imports (run-time ones: an import under
`if TYPE_CHECKING:` names a type and loads nothing)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "devstack"

# Lowest first. Packages of one rank do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "gunicorn_conf", "__init__"),  # devstack/ itself: the shared error types, constants
    ("system",),  # the machine: ports, /proc, files, subprocesses, the terminal
    ("project",),  # the user's project: devstack.toml, the app's layout, env files, its python
    ("speed",),  # start-up speed, behind devstack.speed
    ("stack",),  # facts -> plan -> nginx.conf; readiness, state, probes
    ("logs",),
    ("procs", "watch", "live"),  # supervision, the watchers, live reload
    ("backends",),  # the local stack, foreground or detached
    ("vm",),  # the same stack in a Vagrant guest
    ("doctor",),
    ("commands",),
    ("cli",),
    ("__main__",),  # the entry point: the fast path or typer
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
MOST_AT_TOP = 6


@dataclass(frozen=True)
class Edge:
    where: str  # file:line
    source: str  # the importing module's group
    target: str  # the imported module, dotted
    group: str  # its group


def group_of(dotted: str, root: Path = PACKAGE) -> str:
    """devstack.stack.plan -> "stack"; devstack.errors -> "errors"; devstack -> "__init__"."""
    parts = dotted.split(".")[1:]
    if not parts:
        return "__init__"
    return parts[0]


def edges(path: Path, module: str, text: str, root: Path = PACKAGE) -> list[Edge]:
    """The devstack modules `module` imports at run time."""
    tree = ast.parse(text)
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            if name.split(".")[0] == "devstack":
                for alias in node.names:  # a submodule imported by name, or a name from a module
                    sub = f"{name}.{alias.name}"
                    is_module = (root.parent / sub.replace(".", "/")).with_suffix(".py").exists() or (
                        root.parent / sub.replace(".", "/")
                    ).is_dir()
                    targets.append(sub if is_module else name)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names if alias.name.split(".")[0] == "devstack"]
        me = group_of(module)
        out += [
            Edge(f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}", me, t, group_of(t))
            for t in targets
        ]
    return out


def violations(files: dict[Path, str], root: Path = PACKAGE) -> list[str]:
    found = []
    for path, text in sorted(files.items()):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        for edge in edges(path, module, text, root):
            if edge.group == edge.source:
                continue
            if edge.source not in RANK or edge.group not in RANK:
                found.append(f"{edge.where}: {edge.source} or {edge.group} is in no layer")
            elif RANK[edge.group] >= RANK[edge.source]:
                found.append(f"{edge.where}: {edge.source} imports {edge.target} ({edge.group}: not below)")
            elif edge.group == "speed" and edge.target != "devstack.speed":
                found.append(f"{edge.where}: {edge.target}: the speed room is entered by devstack.speed only")
    return found


def source_files(root: Path = PACKAGE) -> dict[Path, str]:
    return {path: path.read_text() for path in root.rglob("*.py")}


@pytest.mark.unit
def test_every_import_goes_down_the_layers() -> None:
    assert violations(source_files()) == []


@pytest.mark.unit
def test_every_package_has_a_layer_and_the_top_stays_small() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(RANK), f"a package with no layer: {packages - set(RANK)}"
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MOST_AT_TOP, top


@pytest.mark.unit
def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a lower layer importing a higher one, a speed module imported
    from outside the room, a type-only import that is fine."""
    root = tmp_path / "devstack"
    for folder in ("stack", "speed", "backends", "system"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "speed" / "headstart.py").write_text("")
    (root / "backends" / "local.py").write_text("")
    files = {
        root / "stack" / "plan.py": "from devstack.backends import local\n",
        root / "system" / "ports.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from devstack.stack import plan\n",
        root / "backends" / "local.py": "from devstack.speed import headstart\nfrom devstack import speed\n",
    }
    found = violations(files, root)
    assert len(found) == 2, found
    assert any("stack/plan.py:1: stack imports devstack.backends.local" in line for line in found), found
    assert any("devstack.speed.headstart: the speed room is entered" in line for line in found), found
