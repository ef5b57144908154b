"""Calling the C API: a forkpoint_error per call, raised as an exception."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

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


Info = Dict[str, str]


def _info_dict(r: Any) -> Info:
    return {string(lib.forkpoint_info_key(r, i)): string(lib.forkpoint_info_value(r, i))
            for i in range(lib.forkpoint_info_size(r))}


def call_info(fn: Callable[..., int], *args: Any) -> Info:
    """fn(*args, &info, &err) for a call whose result is a forkpoint_info:
    its named values as a dict (of strings, as the C API gives them)."""
    out = ffi.new("forkpoint_info **")
    try:
        call(fn, *args, out)
        return _info_dict(out[0])
    finally:
        lib.forkpoint_info_free(out[0])


def call_full(fn: Callable[..., int], *args: Any) -> Tuple[Info, List[Info]]:
    """The same for a result with both named values and a list of records."""
    out = ffi.new("forkpoint_info **")
    try:
        call(fn, *args, out)
        items = [_info_dict(lib.forkpoint_info_item(out[0], i)) for i in range(lib.forkpoint_info_items(out[0]))]
        return _info_dict(out[0]), items
    finally:
        lib.forkpoint_info_free(out[0])


def call_items(fn: Callable[..., int], *args: Any) -> List[Info]:
    """The same for a result that is a list of records."""
    return call_full(fn, *args)[1]


__all__ = ["call", "call_info", "call_items", "call_full", "Info", "text", "string", "ffi", "lib"]
