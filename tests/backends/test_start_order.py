"""Start order: gunicorn boots while `nginx -t` runs; a rejected nginx.conf still stops
everything with one line, and nothing is left running (real gunicorn, real nginx -t output)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devstack.backends.local import find_nginx
from tests.support.stack import Project, cli_env, processes_under

pytestmark = pytest.mark.needs_nginx


def rejecting_nginx(folder: Path) -> Path:
    """The real nginx, except that `-t` fails as it does on a config it rejects."""
    real = find_nginx()
    script = folder / "nginx"
    script.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do if [ "$arg" = "-t" ]; then\n'
        '  echo "nginx: [emerg] unknown directive \\"bogus\\" in nginx.conf:3" >&2; exit 1\n'
        "fi; done\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("args", [("up", "--detach"), ("up",)], ids=["detach", "foreground"])
def test_a_rejected_nginx_conf_stops_the_already_started_gunicorn(
    project: Project, tmp_path: Path, args: tuple[str, ...]
) -> None:
    env = cli_env(DEVSTACK_NGINX=str(rejecting_nginx(tmp_path)))
    result = project.cli(*args, env=env, timeout=60)
    # Exit.ERROR, a project error (README: exit codes), detached or not: not 4, "not ready".
    assert result.returncode == 1, (result.stdout, result.stderr)
    errors = [ln for ln in result.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1, result.stderr
    assert "nginx rejected the rendered config" in errors[0] and 'unknown directive "bogus"' in errors[0]
    assert "Traceback" not in result.stderr
    assert not processes_under(project.root), "gunicorn was started first and must be stopped"
    assert project.state().get("status") == "failed"
