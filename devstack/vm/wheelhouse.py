"""The app's requirements in the guest, with no network there: a wheelhouse built on the host.

1. Ask the guest what it runs (Python version, machine, glibc): one ssh round trip.
2. On the host, `pip download` wheels for exactly that platform (the project's requirements.txt,
   or its pyproject dependencies, plus the stack's own packages), into a cache folder named by
   a hash of the requirements and the guest's platform: a second `up` downloads nothing.
3. Push the wheels over the open ssh channel (one tar stream) and install them into a guest venv
   outside the share (/opt/devstack/venv), with the pip wheel itself run from the wheel (boxes
   often have no pip and no ensurepip). The venv records the hash: same hash, nothing installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from devstack.errors import DevstackError, Exit
from devstack.project.config import Config
from devstack.system import runner
from devstack.vm import ssh
from devstack.vm.agent import GUEST_BASE

GUEST_VENV = GUEST_BASE / "venv"
GUEST_WHEELS = GUEST_BASE / "wheels"
MIN_GUEST_PYTHON = (3, 10)
DIST = "devstack-flask"
HOST_ONLY = {"python-vagrant"}  # the guest never drives Vagrant


def stack_requirements() -> list[str]:
    """What the guest stack imports: devstack's own dependencies and its [app] extra, read from
    the installed metadata (pyproject.toml is the one list; the test box is built from it too)."""
    try:
        requires = metadata.requires(DIST) or []
    except metadata.PackageNotFoundError:
        raise DevstackError(f"{DIST} is not installed: cannot tell the VM what to install", Exit.VM) from None
    wanted = []
    for line in requires:
        spec, _, marker = line.partition(";")
        name = re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower()
        if name not in HOST_ONLY and (
            not marker.strip() or marker.replace('"', "'").strip() == "extra == 'app'"
        ):
            wanted.append(spec.strip())
    return sorted(dict.fromkeys(wanted))


# What the guest runs, and which wheelhouse its venv holds, with no Python started (a Python
# start costs about a second under emulation). Never fails: parse_probe judges the answer.
PROBE = (
    "python3 -V 2>&1 || true; uname -m; getconf GNU_LIBC_VERSION 2>/dev/null || echo;"
    f" cat {GUEST_VENV}/.devstack-wheelhouse 2>/dev/null || echo"
)


@dataclass(frozen=True)
class GuestPython:
    version: tuple[int, int]
    machine: str
    libc: str  # glibc "2.36"; "" when unknown

    @property
    def tag(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}"

    def platforms(self) -> list[str]:
        """The manylinux tags this guest accepts, newest glibc first."""
        tags = []
        major, _, minor = self.libc.partition(".")
        if major == "2" and minor.isdigit():
            tags += [f"manylinux_2_{m}_{self.machine}" for m in range(int(minor), 16, -1)]
        tags += [f"manylinux2014_{self.machine}", f"manylinux_2_17_{self.machine}"]
        return list(dict.fromkeys(tags))


@dataclass(frozen=True)
class Result:
    installed: bool  # False: the guest venv already held this exact set
    downloaded: bool  # False: the host cache already held it
    wheels: int
    seconds: float
    key: str


def probe(config: Config) -> tuple[GuestPython, str]:
    """The guest's Python, and the key of the wheelhouse its venv holds ("" for none)."""
    code, out, err = ssh.run(config, PROBE, timeout=30)
    if code != 0:
        raise DevstackError(f"cannot ask the VM about its python3: {err.strip()[-160:]}", Exit.VM)
    return parse_probe(out)


def parse_probe(out: str) -> tuple[GuestPython, str]:
    lines = [*out.splitlines(), "", "", "", ""][:4]
    version = re.fullmatch(r"Python (\d+)\.(\d+)\S*", lines[0].strip())
    if version is None:
        raise DevstackError(
            f"the VM has no working python3 ({lines[0].strip()[-160:] or 'no answer'}) — "
            "use a box with Python 3.10 or newer",
            Exit.VM,
        )
    libc = lines[2].strip()
    found = GuestPython(
        (int(version.group(1)), int(version.group(2))),
        lines[1].strip(),
        libc.removeprefix("glibc ") if libc.startswith("glibc ") else "",
    )
    check_version(found)
    return found, lines[3].strip()


def check_version(found: GuestPython) -> None:
    if found.version < MIN_GUEST_PYTHON:
        have = ".".join(map(str, found.version))
        raise DevstackError(
            f"the VM's python3 is {have}; devstack's guest agent needs 3.10 or newer — use a newer "
            "box (Debian 12, Ubuntu 22.04 or later) or install python3.10+ in your provisioner",
            Exit.VM,
        )


def requirements(config: Config) -> list[str]:
    """The project's own requirements: requirements.txt (project root, then the app folder), else
    [project].dependencies of its pyproject.toml. Lines are kept as pip reads them."""
    for folder in dict.fromkeys((config.root, config.app_dir)):
        path = folder / "requirements.txt"
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    pyproject = config.root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return []
        deps = data.get("project", {}).get("dependencies", [])
        return [str(d) for d in deps] if isinstance(deps, list) else []
    return []


def cache_key(reqs: list[str], guest: GuestPython) -> str:
    blob = json.dumps([reqs, stack_requirements(), guest.tag, guest.platforms()], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(config: Config) -> Path:
    return config.state_dir / "vm" / "wheelhouse"


def ensure(config: Config, probed: str | None = None) -> Result:
    """probed: PROBE's output when it rode on an earlier round trip (guest.prepare)."""
    started = time.monotonic()
    guest, installed_key = parse_probe(probed) if probed is not None else probe(config)
    reqs = requirements(config)
    key = cache_key(reqs, guest)
    folder = cache_dir(config) / key
    downloaded = False
    if not (folder / "complete").is_file():
        download(config.root, reqs, guest, folder)
        downloaded = True
    wheels = sorted(p.name for p in (folder / "app").glob("*.whl"))
    installed = False
    if installed_key != key:
        push_and_install(config, folder, key)
        installed = True
    return Result(installed, downloaded, len(wheels), time.monotonic() - started, key)


_PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def download(root: Path, reqs: list[str], guest: GuestPython, folder: Path) -> None:
    """Wheels for the guest into folder/app (the requirements and the stack) and folder/pip.
    pip's own settings apply (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX for an offline host)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = [
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        f"{guest.version[0]}.{guest.version[1]}",
        "--abi",
        guest.tag,
    ]
    for tag in guest.platforms():
        target += ["--platform", tag]
    req_file = folder / "requirements.txt"
    stack = stack_requirements() + (["tomli"] if guest.version < (3, 11) else [])  # tomllib: 3.11+
    req_file.write_text("\n".join([*stack, *reqs]) + "\n", encoding="utf-8")
    steps = [
        # cwd = the project: a relative `--find-links wheels` or `./pkg.whl` line means what it says.
        [*_PIP, "download", "-q", *target, "-d", str(folder / "app"), "-r", str(req_file)],
        [
            *_PIP,
            "download",
            "-q",
            "--only-binary=:all:",
            "--no-deps",
            "-d",
            str(folder / "pip"),
            "pip",
        ],
    ]
    for argv in steps:
        result = runner.run(argv, cwd=root, timeout=600)
        if result.code in (runner.NOT_FOUND, runner.CANNOT_EXECUTE):
            raise DevstackError(
                f"cannot run pip on the host to build the VM's wheelhouse: {result.err}", Exit.VM
            )
        if not result.ok:
            why = _pip_error(result.err or result.out)
            if "No module named pip" in why:
                why = (
                    f"{sys.executable} has no pip (uv tool installs have none): `uv tool install --with pip`"
                )
            raise DevstackError(
                f"cannot build the VM's wheelhouse for {guest.tag} {guest.machine}: {why} — every "
                "requirement needs a wheel for the guest (`pip wheel PKG -w wheels` and a "
                "`--find-links wheels` line in requirements.txt)",
                Exit.VM,
            )
    (folder / "complete").write_text("ok\n", encoding="utf-8")


def _pip_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["pip failed"])[0][:240]


def push_and_install(config: Config, folder: Path, key: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for sub in ("app", "pip"):
            tar.add(str(folder / sub), arcname=sub)
    pip_wheel = next((folder / "pip").glob("pip-*.whl")).name
    wheels = f"{GUEST_WHEELS}/{key}"
    venv = str(GUEST_VENV)
    script = (
        f"set -e; sudo install -d -o $(id -u) -g $(id -g) {GUEST_WHEELS}; rm -rf {wheels};"
        f" mkdir -p {wheels}; tar -xzf - -C {wheels};"
        # --without-pip: Debian's python3 has no ensurepip without python3-venv. System site
        # packages stay visible, so what the box already carries is not installed twice.
        f" sudo rm -rf {venv}; sudo install -d -o $(id -u) -g $(id -g) {venv};"
        f" python3 -m venv --without-pip --system-site-packages {venv};"
        f" {venv}/bin/python {wheels}/pip/{pip_wheel}/pip install -q --no-index"
        f" --disable-pip-version-check --find-links {wheels}/app {wheels}/app/*.whl;"
        f" echo {shlex.quote(key)} > {venv}/.devstack-wheelhouse"
    )
    code, out, err = ssh.run(config, script, timeout=600, stdin=buffer.getvalue())
    if code != 0:
        raise DevstackError(
            f"installing the app's requirements in the VM failed: {_pip_error(err or out)} — "
            f"full output: `devstack doctor`, or ssh in and run {venv}/bin/python -m pip",
            Exit.VM,
        )
