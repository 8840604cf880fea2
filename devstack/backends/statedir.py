"""The state dir a stack runs from: nginx's pid and temp folders, the socket folder, the link
to a static folder whose path holds a "$", a fallback mime.types. Written before nginx starts."""

from __future__ import annotations

import contextlib
import os

from devstack.project.config import Config
from devstack.stack import livepaths as live_paths
from devstack.stack.facts import HostFacts
from devstack.system import safefs

# Where nginx keeps its pid and temp files: all under the state dir, nothing under /etc or /var.
NGINX_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def prepare_state_dir(config: Config, host: HostFacts) -> None:
    state_dir = config.state_dir
    # nginx writes its pid and temp files here and follows symlinks: refuse any planted one.
    safefs.check_tree(state_dir)
    safefs.ensure_dir(state_dir)
    os.chmod(state_dir, 0o755)
    for name in NGINX_TEMP_DIRS:
        safefs.ensure_dir(state_dir / "tmp")
        safefs.ensure_dir(state_dir / "tmp" / name)
    safefs.write_text(state_dir / ".gitignore", "*\n")
    folder = live_paths.ensure_socket_dir(state_dir)  # deep project paths: sockets in a short folder
    link = host.static_alias
    if link != host.static_dir:  # a "$" in the path: nginx reaches the static folder by a link
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / link.name)
        os.symlink(host.static_dir, folder / link.name)
    if host.mime_types is None:
        safefs.write_text(state_dir / "mime.types", MIME_FALLBACK)


MIME_FALLBACK = """types {
    text/html html htm;
    text/css css;
    application/javascript js mjs;
    application/json json map;
    image/png png;
    image/jpeg jpg jpeg;
    image/gif gif;
    image/svg+xml svg;
    image/x-icon ico;
    font/woff woff;
    font/woff2 woff2;
    text/plain txt;
}
"""
