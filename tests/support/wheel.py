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
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
            wheel.writestr(name, data)
        record.append("greeting-1.0.dist-info/RECORD,,")
        wheel.writestr("greeting-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path
