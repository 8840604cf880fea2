"""Real project layouts: what `devstack init` finds (project/layout.py), and that what it writes loads.

Each case is a project tree on disk, read (never imported) as Flask would resolve it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.commands import init
from devstack.project import config as config_mod
from devstack.project import envfiles, layout
from tests.support.stack import EXAMPLE

pytestmark = pytest.mark.unit

FACTORY = """\
import os
from flask import Flask


def create_app(test_config=None):
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(SECRET_KEY="dev")
    return app
"""


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_text(text, encoding="utf-8")
    return root


def init_and_load(root: Path) -> config_mod.Config:
    assert init.run(root) == 0
    return config_mod.load(root / "devstack.toml")


def test_flask_tutorial_factory_in_a_package(tmp_path: Path) -> None:
    root = tree(
        tmp_path, {"flaskr/__init__.py": FACTORY, "flaskr/db.py": "", "flaskr/static/style.css": "a{}"}
    )
    found = layout.detect(root)
    assert found is not None
    assert (found.wsgi, found.app_dir, found.static_dir) == (
        "flaskr:create_app()",
        root,
        root / "flaskr/static",
    )
    config = init_and_load(root)
    assert config.app.wsgi == "flaskr:create_app()" and config.static_dir == root / "flaskr" / "static"


def test_src_layout(tmp_path: Path) -> None:
    root = tree(
        tmp_path, {"src/shop/__init__.py": FACTORY, "src/shop/static/app.js": "", "pyproject.toml": ""}
    )
    found = layout.detect(root)
    assert found is not None and found.wsgi == "shop:create_app()"
    assert found.app_dir == root / "src" and found.static_dir == root / "src/shop/static"
    config = init_and_load(root)
    assert config.app_dir == root / "src" and config.has_static


def test_wsgi_py_calling_a_factory_with_its_own_static_folder(tmp_path: Path) -> None:
    factory = FACTORY.replace("instance_relative_config=True", 'static_folder="assets"')
    root = tree(
        tmp_path,
        {
            "wsgi.py": "from shop import create_app\n\napp = create_app()\n",
            "shop/__init__.py": factory,
            "shop/assets/site.css": "",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.wsgi == "wsgi:app"
    assert found.static_dir == root / "shop/assets" and found.static_url == "/assets/"
    config = init_and_load(root)
    assert config.static.url == "/assets/" and config.static_dir == root / "shop" / "assets"


def test_flask_app_in_flaskenv_wins(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            ".flaskenv": "FLASK_APP=hello:make()\nFLASK_DEBUG=1\n",
            "hello.py": (
                "from flask import Flask\n\ndef make():\n    return Flask(__name__, static_folder=None)\n"
            ),
            "app.py": "from flask import Flask\napp = Flask(__name__)\n",  # not this one
        },
    )
    found = layout.detect(root)
    assert found is not None and found.wsgi == "hello:make()" and found.static_dir is None
    assert "FLASK_APP" in found.how
    config = init_and_load(root)
    assert not config.has_static  # static_folder=None: nginx proxies everything


def test_single_module_socketio_app_without_static_folder(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "chat.py": "from flask import Flask\nfrom flask_socketio import SocketIO\n\n"
            "app = Flask(__name__)\nsocketio = SocketIO(app, async_mode='threading')\n"
        },
    )
    found = layout.detect(root)
    assert found is not None and (found.wsgi, found.static_dir) == ("chat:app", None)
    config = init_and_load(root)
    assert config.app.wsgi == "chat:app" and not config.has_static
    assert '# dir = "static"' in (root / "devstack.toml").read_text()


def test_static_url_path(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask\napp = Flask(__name__, static_url_path='/s')\n",
            "static/x.css": "",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.static_url == "/s/" and found.static_dir == root / "static"


def test_module_app_beats_factory_and_tests_are_skipped(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "tests/conftest.py": "from flask import Flask\napp = Flask(__name__)\n",
            "site/web.py": FACTORY + "\napp = Flask(__name__)\n",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.wsgi == "web:app" and found.app_dir == root / "site"


def test_the_bundled_example() -> None:
    found = layout.detect(EXAMPLE)
    assert found is not None and found.wsgi == "app:app" and found.static_dir == EXAMPLE.resolve() / "static"


def test_nothing_found(tmp_path: Path) -> None:
    tree(tmp_path, {"script.py": "print('hi')\n", "broken.py": "def (:\n"})
    assert layout.detect(tmp_path) is None


def test_dotenv_like_flask(tmp_path: Path) -> None:
    tree(
        tmp_path,
        {
            ".flaskenv": "FLASK_APP=app\nSHARED=from-flaskenv\n",
            ".env": "SHARED=from-env\nexport QUOTED='a # not a comment'\nMULTI=\"line1\nline2\"\n"
            "BASE=/srv\nDATA=${BASE}/data\nKEPT=from-file\nBARE\n",
        },
    )
    values = envfiles.load(tmp_path, environ={"KEPT": "from-shell"})
    assert values["SHARED"] == "from-env"  # .env over .flaskenv
    assert values["QUOTED"] == "a # not a comment"
    assert values["MULTI"] == "line1\nline2"
    assert values["DATA"] == "/srv/data"
    assert "KEPT" not in values  # the real environment wins, as with `flask run`
    assert "BARE" not in values and values["FLASK_APP"] == "app"


def test_a_gevent_patched_app_gets_the_gevent_worker(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from gevent import monkey\nmonkey.patch_all()\n\nfrom flask import Flask\n"
            "from flask_socketio import SocketIO\n\napp = Flask(__name__)\nsocketio = SocketIO(app)\n"
        },
    )
    assert init_and_load(root).app.worker == "gevent"
    (root / "devstack.toml").unlink()
    (root / "app.py").write_text("from flask import Flask\n# monkey.patch_all()\napp = Flask(__name__)\n")
    assert init_and_load(root).app.worker == "gthread"  # a comment patches nothing
