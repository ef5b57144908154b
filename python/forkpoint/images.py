"""The image layer: one process tree <-> one directory of CRIU-format images."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from ._call import Info, call, call_info, ffi, lib, text

PathLike = Union[str, "os.PathLike[str]"]


_PAGES = {"auto": "FORKPOINT_PAGES_AUTO", "precopy": "FORKPOINT_PAGES_PRECOPY", "fork": "FORKPOINT_PAGES_FORK",
          "copy": "FORKPOINT_PAGES_COPY"}


def dump(pid: int, directory: PathLike, *, leave_running: bool = True, compress: bool = True,
         fsync: bool = False, zstd_level: Optional[int] = None, threads: Optional[int] = None,
         pages: str = "auto", ghost_limit: Optional[int] = None, timeout: Optional[float] = None,
         verbose: bool = False, log: Optional[PathLike] = None, tcp_established: bool = False,
         ext_unix_sk: bool = False) -> Info:
    """Dumps the process tree rooted at ``pid`` into ``directory`` (which must
    not exist, or be empty). With ``leave_running=False`` the tree is killed
    once everything is written. The calling process is the tree's tracer
    meanwhile.

    The options are `forkpoint dump`'s: ``zstd_level`` (-7..-1, 1..19),
    compression ``threads`` (1..16), ``pages`` ("auto", "precopy", "fork",
    "copy": how pages are taken while it runs on), ``ghost_limit`` (bytes of
    a deleted file the image may carry), ``timeout`` (seconds for each
    thread to stop), ``verbose`` log, ``log`` path, ``tcp_established``
    (save established TCP connections with TCP repair mode; root),
    ``ext_unix_sk`` (save a unix datagram socket connected to a named socket
    outside the tree, connected to it again on restore). Returns what it took
    (strings): processes, threads, pages, bytes_written, pause_ms,
    total_ms, method, ... (forkpoint_dump_with in forkpoint.h)."""
    if pages not in _PAGES:
        raise ValueError(f"pages must be one of {sorted(_PAGES)}, not {pages!r}")
    flags = (lib.FORKPOINT_DUMP_LEAVE_RUNNING if leave_running else 0) | \
        (0 if compress else lib.FORKPOINT_DUMP_NO_COMPRESS) | (lib.FORKPOINT_DUMP_FSYNC if fsync else 0) | \
        (lib.FORKPOINT_DUMP_TCP_ESTABLISHED if tcp_established else 0) | \
        (lib.FORKPOINT_DUMP_EXT_UNIX_SK if ext_unix_sk else 0)
    out = ffi.new("forkpoint_dump_options **")
    call(lib.forkpoint_dump_options_new, pid, text(os.fspath(directory)), out)
    o = ffi.gc(out[0], lib.forkpoint_dump_options_free)
    numbers: Dict[str, Optional[int]] = {
        "FORKPOINT_DUMP_OPT_FLAGS": flags,
        "FORKPOINT_DUMP_OPT_ZSTD_LEVEL": zstd_level,
        "FORKPOINT_DUMP_OPT_THREADS": threads,
        "FORKPOINT_DUMP_OPT_PAGES": getattr(lib, _PAGES[pages]),
        "FORKPOINT_DUMP_OPT_GHOST_LIMIT": ghost_limit,
        "FORKPOINT_DUMP_OPT_TIMEOUT_MS": None if timeout is None else max(1, int(timeout * 1000)),
        "FORKPOINT_DUMP_OPT_VERBOSE": 1 if verbose else None,
    }
    for opt, value in numbers.items():
        if value is not None:
            call(lib.forkpoint_dump_options_set, o, getattr(lib, opt), value)
    if log is not None:
        call(lib.forkpoint_dump_options_set_str, o, lib.FORKPOINT_DUMP_OPT_LOG, text(os.fspath(log)))
    return call_info(lib.forkpoint_dump_with, o)


def restore(directory: PathLike, *, exact_pids: bool = False, engine: str = "auto") -> int:
    """Restores the tree in ``directory``; returns its root's pid, a child of
    this process (wait for it with :func:`wait`). ``engine``: "auto",
    "native" or "criu". :func:`restore_with` takes every option."""
    return int(restore_with(directory, exact_pids=exact_pids, engine=engine)["wait_pid"])


def restore_with(directory: PathLike, *, exact_pids: bool = False, engine: str = "auto", verify: bool = True,
                 detached: bool = False, timeout: Optional[float] = None, verbosity: Optional[int] = None,
                 log: Optional[PathLike] = None, criu_flags: Sequence[str] = ()) -> Info:
    """Restores the tree in ``directory`` with `forkpoint restore`'s options:
    ``verify=False`` skips the manifest check (your own risk), ``detached``
    leaves the root to init (not this process's child), ``timeout`` in
    seconds, log ``verbosity`` 0..4 and ``log`` path, ``criu_flags`` passed
    on to `criu restore` (such as "--file-locks"). Returns what it did
    (strings): pid, wait_pid (what :func:`wait` takes), ns_init, ns_pid,
    engine, fallback, verify_note (forkpoint_restore_with in forkpoint.h)."""
    engines = {"auto": 0, "native": lib.FORKPOINT_RESTORE_NATIVE, "criu": lib.FORKPOINT_RESTORE_CRIU}
    if engine not in engines:
        raise ValueError(f"engine must be one of {sorted(engines)}, not {engine!r}")
    flags = engines[engine] | (lib.FORKPOINT_RESTORE_EXACT_PIDS if exact_pids else 0) | \
        (0 if verify else lib.FORKPOINT_RESTORE_NO_VERIFY) | (lib.FORKPOINT_RESTORE_DETACHED if detached else 0)
    out = ffi.new("forkpoint_restore_options **")
    call(lib.forkpoint_restore_options_new, text(os.fspath(directory)), out)
    o: Any = ffi.gc(out[0], lib.forkpoint_restore_options_free)
    call(lib.forkpoint_restore_options_set, o, lib.FORKPOINT_RESTORE_OPT_FLAGS, flags)
    if timeout is not None:
        call(lib.forkpoint_restore_options_set, o, lib.FORKPOINT_RESTORE_OPT_TIMEOUT_MS, max(1, int(timeout * 1000)))
    if verbosity is not None:
        call(lib.forkpoint_restore_options_set, o, lib.FORKPOINT_RESTORE_OPT_VERBOSITY, verbosity)
    if log is not None:
        call(lib.forkpoint_restore_options_set_str, o, lib.FORKPOINT_RESTORE_OPT_LOG, text(os.fspath(log)))
    for f in criu_flags:
        call(lib.forkpoint_restore_options_set_str, o, lib.FORKPOINT_RESTORE_OPT_CRIU_FLAG, text(f))
    return call_info(lib.forkpoint_restore_with, o)


def wait(pid: int, timeout: Optional[float] = None) -> int:
    """Waits for a restored root to end; returns its exit code, or 128+N when
    signal N ended it. Raises ForkpointTimeoutError after ``timeout`` seconds."""
    status = ffi.new("int *")
    call(lib.forkpoint_wait, pid, -1 if timeout is None else int(timeout * 1000), status)
    return int(status[0])


def verify(directory: PathLike) -> None:
    """Raises unless ``directory`` is a complete, intact image (every file
    checked against its manifest)."""
    call(lib.forkpoint_verify, text(os.fspath(directory)))


def decompress(directory: PathLike, *, keep: bool = False, verify: bool = False) -> None:
    """Expands ``directory``'s zstd page stores into plain pages-N.img, so
    that plain `criu restore -D` restores it; ``keep`` keeps the stores too,
    ``verify`` checks every file against the manifest first."""
    flags = (lib.FORKPOINT_DECOMPRESS_KEEP if keep else 0) | (lib.FORKPOINT_DECOMPRESS_VERIFY if verify else 0)
    call(lib.forkpoint_decompress, text(os.fspath(directory)), flags)
