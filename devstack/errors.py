"""The errors devstack expects, each printed as one line by the error boundary in cli/app.py."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    ERROR = 1  # a project error: bad config, missing tool, failed check
    USAGE = 2
    PORT_TAKEN = 3
    NOT_READY = 4  # the stack started but readiness was not reached
    VM = 5
    ALREADY_RUNNING = 6
    INTERRUPTED = 130


class DevstackError(Exception):
    """An expected failure: its message is the whole story, one line, with the fix."""

    exit_code: Exit = Exit.ERROR

    def __init__(self, message: str, exit_code: Exit | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(DevstackError):
    """A config problem, always naming the file and the key."""

    def __init__(self, path: str, key: str, problem: str, fix: str) -> None:
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(one_line(f"{where}{problem} — {fix}"))
        self.path = path
        self.key = key


class PortTaken(DevstackError):
    exit_code = Exit.PORT_TAKEN


class NotReady(DevstackError):
    exit_code = Exit.NOT_READY


def one_line(text: str) -> str:
    """Control characters (a newline in a TOML key, a folder name) escaped: errors are one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
