"""forkpoint's errors as exceptions: one class per forkpoint_error code,
each carrying forkpoint's own message (the cause and, where there is one,
the fix)."""
from __future__ import annotations

from typing import Dict, Type


class ForkpointError(Exception):
    """A forkpoint call failed. ``code`` is the forkpoint_error code (the
    `forkpoint` command's exit code for the same failure), ``errno`` the
    errno of the root cause (0 if none), ``message`` forkpoint's message."""

    def __init__(self, message: str, code: int = 1, errno: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.errno = errno


class InvalidArgumentError(ForkpointError, ValueError):
    """A bad argument (code 2)."""


class NotFoundError(ForkpointError, LookupError):
    """No such process, session or snapshot (code 3)."""


class UnsupportedError(ForkpointError):
    """A kernel, program or image feature forkpoint cannot handle (code 4)."""


class ForkpointTimeoutError(ForkpointError):
    """A deadline expired (code 5)."""


class ForkpointPermissionError(ForkpointError):
    """Not allowed: ptrace, root only, file permissions (code 6)."""


class NotAvailableError(ForkpointError, NotImplementedError):
    """Not available in this build of libforkpoint (code 7)."""


_BY_CODE: Dict[int, Type[ForkpointError]] = {
    2: InvalidArgumentError,
    3: NotFoundError,
    4: UnsupportedError,
    5: ForkpointTimeoutError,
    6: ForkpointPermissionError,
    7: NotAvailableError,
}


def from_code(code: int, errno: int, message: str) -> ForkpointError:
    return _BY_CODE.get(code, ForkpointError)(message, code, errno)
