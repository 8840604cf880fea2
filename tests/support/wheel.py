"""A pure wheel built by hand, for tests of "the app's own requirement" (no setuptools, no network)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def make_wheel(folder: Path) -> Path:
    """A pure wheel built by hand (no setuptools): greeting 1.0, greeting.hello()."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "greeting-1.0-py3-none-any.whl"
    files = {
        "greeting.py": 'def hello() -> str:\n    return "hello from an app requirement"\n',
        "greeting-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: greeting\nVersion: 1.0\n",
        "greeting-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    return _write(path, files)


WORKER = """\
import os
import sys
import time


def main() -> None:
    # Where it runs, as the supervisor started it: the venv's prefix and VIRTUAL_ENV.
    with open("worker.out", "w") as out:
        out.write(sys.prefix + "|" + os.environ.get("VIRTUAL_ENV", "") + "\\n")
    time.sleep(3600)
"""


def make_script_wheel(folder: Path) -> Path:
    """A pure wheel with a console script, as `rq` or `celery` ship one: hello-worker 1.0, whose
    `hello-worker` writes worker.out (sys.prefix|VIRTUAL_ENV) and sleeps."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hello_worker-1.0-py3-none-any.whl"
    info = "hello_worker-1.0.dist-info"
    files = {
        "hello_worker.py": WORKER,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: hello-worker\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\nhello-worker = hello_worker:main\n",
    }
    return _write(path, files)


def _write(path: Path, files: dict[str, str]) -> Path:
    """The wheel at path holding files, with its RECORD."""
    info = next(name.split("/")[0] for name in files if name.endswith(".dist-info/WHEEL"))
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
            wheel.writestr(name, data)
        record.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path
