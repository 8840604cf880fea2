"""The one error boundary of every command: an expected error is one line and a distinct exit
code, Ctrl-C is 130, anything unexpected is a short message plus a crash log
(DEVSTACK_TRACEBACK=1 prints the traceback instead). Free of typer, so that the everyday
commands (speed/fastpath.py) run inside it without importing typer at all, and of the consoles until
something is said: `up --detach`'s waiting process runs in it beside the daemon and gunicorn's
boot, and on 2 cores every millisecond of its imports is taken from them."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from devstack.errors import DevstackError, Exit


def guarded(command: Callable[[], int]) -> int:
    """command()'s exit code, or the code of what it raised, said once on stderr."""
    try:
        return command()
    except DevstackError as exc:
        from rich.markup import escape  # only on this path: rich is slow to import

        from devstack.system import console

        console.err().print(f"[bold red]devstack: error:[/] {escape(str(exc))}", soft_wrap=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except OSError as exc:
        # A folder that cannot be written (read-only, another user's, a full disk) is the
        # machine's state, not a bug: one line naming the path, like safefs.Unwritable.
        from devstack.system import safefs

        if exc.errno not in safefs.WRITE_ERRNOS or not exc.filename:
            return _internal(exc)
        said = safefs.unwritable(exc.filename, exc)
        return guarded(lambda: _raise(said))
    except Exception as exc:
        return _internal(exc)


def _raise(exc: Exception) -> int:
    raise exc


def _internal(exc: BaseException) -> int:
    """A bug: a short line, the traceback in a crash log (or on stderr with DEVSTACK_TRACEBACK)."""
    import tempfile
    import traceback

    from devstack import __version__
    from devstack.system import console
    from devstack.system import env as env_mod

    if env_mod.current().environ.get("DEVSTACK_TRACEBACK"):
        traceback.print_exception(exc, file=env_mod.current().err())
        return int(Exit.ERROR)
    fd, crash = tempfile.mkstemp(prefix="devstack-crash-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"devstack {__version__}, Python {sys.version}\n")
        traceback.print_exception(exc, file=handle)
    console.err().print(
        f"devstack: internal error: {type(exc).__name__}: {exc} (details in {crash}; please report it)",
        markup=False,
    )
    return int(Exit.ERROR)
