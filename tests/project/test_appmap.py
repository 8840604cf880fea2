"""The app's url_map, asked in the app's interpreter when a blueprint's folders are no literals."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devstack.commands import init
from devstack.project import appmap
from devstack.project import config as config_mod
from devstack.system import runner

DYNAMIC = """\
import os
from flask import Flask, Blueprint

HERE = os.path.dirname(__file__)
bp = Blueprint("widgets", __name__, static_folder=os.path.join(HERE, "widget_files"),
               template_folder=os.path.join(HERE, "widget_templates"))
app = Flask(__name__)
app.register_blueprint(bp, url_prefix="/w")
"""


def test_init_asks_the_apps_url_map_for_what_source_cannot_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.py").write_text(DYNAMIC)
    (tmp_path / "widget_files").mkdir()
    (tmp_path / "widget_files" / "w.css").write_text("")
    (tmp_path / "widget_templates").mkdir()
    assert init.run(tmp_path) == 0
    said = capsys.readouterr().err
    assert "blueprint bp read from the app's url_map" in said, said
    config = config_mod.load(tmp_path / "devstack.toml")
    # Flask: url_prefix + "/" + the folder's name.
    assert [(r.url, r.dir.as_posix()) for r in config.static.extra] == [("/w/widget_files/", "widget_files")]
    assert config.app.reload_extra == ("widget_templates/*.html",)


def test_an_app_that_cannot_be_imported_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise RuntimeError('needs a database')\n")
    answer = appmap.ask(sys.executable, tmp_path, "app:app")
    assert isinstance(answer, str)
    assert answer.endswith("RuntimeError: needs a database") and "\n" not in answer


@pytest.mark.unit
def test_a_hanging_import_is_a_timeout_not_a_wait() -> None:
    def hung(argv: object, **kwargs: object) -> runner.Completed:
        return runner.Completed(runner.TIMED_OUT, "", "python: no answer within 20 s (stopped)")

    answer = appmap.ask("/venv/bin/python", Path("/p"), "app:app", run=hung)
    assert answer == f"importing app:app with /venv/bin/python took over {appmap.TIMEOUT:g} s"


@pytest.mark.unit
def test_the_answer_is_read_from_its_marked_line() -> None:
    out = (
        "app printed this at import\n"
        'DEVSTACK-APPMAP {"static": [{"url": "/static/", "dir": "/p/static", "app": true},'
        ' {"url": "/c/s/", "dir": "/p/c/s", "app": false}], "templates": ["/p/templates"]}\n'
    )
    answer = appmap.ask("py", Path("/p"), "app:app", run=lambda argv, **kw: runner.Completed(0, out, ""))
    assert answer == appmap.AppMap(
        (("/static/", Path("/p/static"), True), ("/c/s/", Path("/p/c/s"), False)), (Path("/p/templates"),)
    )
