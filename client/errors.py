"""The client's errors; every one becomes exit code 2 with its message on stderr::

CliError
├── ConnectionFailed      the server could not be reached (or the connection broke)
├── ServerError           the server answered with an error envelope (status, message)
├── FileFormatError       an input file is not what its format promises
└── StateMismatch         a resume state file belongs to another import
"""

from __future__ import annotations

from typing import Any


class CliError(Exception):
    """Base of the errors the CLI reports; the message is meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectionFailed(CliError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"no answer from the server at {url}: {reason}")


class ServerError(CliError):
    """An error envelope: ``status_code`` is the HTTP status, ``result`` whatever the
    server sent beside the message (a bulk load's report of what it committed)."""

    def __init__(self, method: str, path: str, status_code: int, reason: str, result: Any) -> None:
        super().__init__(f"{method} {path} failed with HTTP {status_code}: {reason}")
        self.status_code = status_code
        self.reason = reason
        self.result = result


class FileFormatError(CliError):
    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


class StateMismatch(CliError):
    pass
