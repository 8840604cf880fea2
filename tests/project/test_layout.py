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


BP_APP = """\
from flask import Flask
from shop.chat import bp
from shop import admin as admin_pkg


def create_app():
    app = Flask(__name__)
    app.register_blueprint(bp)
    app.register_blueprint(admin_pkg.admin, url_prefix="/admin")
    app.register_blueprint(plain)
    return app
"""


def test_blueprints_static_and_template_folders_by_flasks_rules(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "shop/__init__.py": BP_APP,
            "shop/static/site.css": "",
            "shop/templates/index.html": "",
            # url_prefix on the Blueprint + the static folder's name: /chat/static/
            "shop/chat/__init__.py": 'from flask import Blueprint\nbp = Blueprint("chat", __name__, '
            'static_folder="static", template_folder="templates", url_prefix="/chat")\n',
            "shop/chat/static/chat.css": "",
            "shop/chat/templates/chat/room.html": "",
            # static_url_path, under register_blueprint's url_prefix: /admin/assets/
            "shop/admin/__init__.py": 'import flask\nadmin = flask.Blueprint("admin", __name__, '
            'static_folder="assets", static_url_path="/assets")\n',
            "shop/admin/assets/a.js": "",
            # No url_prefix, static_url_path /static: shadowed by the app's own static route.
            "shop/plain.py": "from flask import Blueprint\n"
            'plain = Blueprint("plain", __name__, static_folder="static")\n',
            "shop/static/x/": "",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.wsgi == "shop:create_app()"
    assert sorted(found.extra_static) == [
        ("/admin/assets/", root / "shop/admin/assets"),
        ("/chat/static/", root / "shop/chat/static"),
    ]
    assert found.templates == (root / "shop/templates", root / "shop/chat/templates")
    assert found.unresolved == ()
    config = init_and_load(root)
    assert sorted((r.url, r.dir.as_posix()) for r in config.static.extra) == [
        ("/admin/assets/", "shop/admin/assets"),
        ("/chat/static/", "shop/chat/static"),
    ]
    assert config.app.reload_extra == ("shop/templates/*.html", "shop/chat/templates/*.html")
    assert config.static.url == "/static/" and config.static_dir == root / "shop/static"


def test_blueprint_prefix_joins_like_flask(tmp_path: Path) -> None:
    # Both url_prefix and static_url_path: Flask joins them ("/c" + "/s" = "/c/s").
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask, Blueprint\napp = Flask(__name__)\n"
            'bp = Blueprint("b", __name__, static_folder="files", static_url_path="/s/")\n'
            'app.register_blueprint(bp, url_prefix="/c/")\n',
            "files/f.txt": "",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.extra_static == (("/c/s/", root / "files"),)


def test_a_blueprint_whose_folder_is_no_literal_is_unresolved(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "import os\nfrom flask import Flask, Blueprint\napp = Flask(__name__)\n"
            'bp = Blueprint("b", __name__, static_folder=os.environ["DIR"])\n'
            "app.register_blueprint(bp)\n",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.unresolved == ("bp",) and found.extra_static == ()


def test_static_at_the_site_root_is_written_as_slash(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask\n"
            'app = Flask(__name__, static_folder=".", static_url_path="")\n',
            "index.css": "",
        },
    )
    found = layout.detect(root)
    assert found is not None and (found.static_url, found.static_dir) == ("/", root)
    config = init_and_load(root)  # once written as "//", which `up` refused
    assert config.static.url == "/" and config.static_dir == root and config.static.at_root


def test_blueprint_registered_under_an_alias_or_not_at_all(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask\nfrom parts import bp as parts_bp\n"
            'app = Flask(__name__)\napp.register_blueprint(parts_bp, url_prefix="/p")\n',
            "parts.py": "from flask import Blueprint\n"
            'bp = Blueprint("parts", __name__, static_folder="parts_static")\n'
            'unused = Blueprint("unused", __name__, static_folder="unused_static")\n',
            "parts_static/a.css": "",
            "unused_static/b.css": "",
        },
    )
    found = layout.detect(root)
    # The alias carries register_blueprint's url_prefix; a blueprint never registered is not served.
    assert found is not None and found.extra_static == (("/p/parts_static/", root / "parts_static"),)


def test_blueprints_registered_in_a_loop_are_asked_of_the_app(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask, Blueprint\napp = Flask(__name__)\n"
            'a = Blueprint("a", __name__, static_folder="a_static")\n'
            "for bp in (a,):\n    app.register_blueprint(bp)\n",
            "a_static/x.css": "",
        },
    )
    found = layout.detect(root)
    assert found is not None and found.unresolved == ("a",) and found.extra_static == ()


def test_a_nested_blueprint_is_asked_of_the_app(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask, Blueprint\napp = Flask(__name__)\n"
            'parent = Blueprint("parent", __name__, url_prefix="/parent")\n'
            'child = Blueprint("child", __name__, static_folder="c_static", url_prefix="/child")\n'
            "parent.register_blueprint(child)\napp.register_blueprint(parent)\n",
            "c_static/x.css": "",
        },
    )
    found = layout.detect(root)
    # Flask serves it at /parent/child/c_static/: not "/child/c_static/" from the child alone.
    assert found is not None and found.unresolved == ("child",) and found.extra_static == ()


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
