"""Calling the C API: a forkpoint_error per call, raised as an exception."""
from __future__ import annotations

from typing import Any, Callable

from ._native import ffi, lib
from .errors import from_code


def call(fn: Callable[..., int], *args: Any) -> int:
    """fn(*args, &err); raises the matching ForkpointError when it returns < 0."""
    err = ffi.new("forkpoint_error *")
    rc = fn(*args, err)
    if rc < 0:
        raise from_code(err.code, err.errnum, ffi.string(err.message).decode(errors="replace"))
    return rc


def text(s: Any) -> bytes:
    return s.encode() if isinstance(s, str) else bytes(s)


def string(cdata: Any) -> str:
    return ffi.string(cdata).decode(errors="replace")


__all__ = ["call", "text", "string", "ffi", "lib"]
