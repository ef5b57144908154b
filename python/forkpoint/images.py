"""The image layer: one process tree <-> one directory of CRIU-format images."""
from __future__ import annotations

import os
from typing import Optional, Union

from ._call import call, ffi, lib, text

PathLike = Union[str, "os.PathLike[str]"]


def dump(pid: int, directory: PathLike, *, leave_running: bool = True, compress: bool = True,
         fsync: bool = False, tcp_established: bool = False) -> None:
    """Dumps the process tree rooted at ``pid`` into ``directory`` (which must
    not exist, or be empty). With ``leave_running=False`` the tree is killed
    once everything is written. ``tcp_established`` saves established TCP
    connections (TCP repair mode; root). The calling process is the tree's
    tracer meanwhile."""
    flags = (lib.FORKPOINT_DUMP_LEAVE_RUNNING if leave_running else 0) | \
        (0 if compress else lib.FORKPOINT_DUMP_NO_COMPRESS) | (lib.FORKPOINT_DUMP_FSYNC if fsync else 0) | \
        (lib.FORKPOINT_DUMP_TCP_ESTABLISHED if tcp_established else 0)
    call(lib.forkpoint_dump, pid, text(os.fspath(directory)), flags)


def restore(directory: PathLike, *, exact_pids: bool = False, engine: str = "auto") -> int:
    """Restores the tree in ``directory``; returns its root's pid, a child of
    this process (wait for it with :func:`wait`). ``engine``: "auto",
    "native" or "criu"."""
    engines = {"auto": 0, "native": lib.FORKPOINT_RESTORE_NATIVE, "criu": lib.FORKPOINT_RESTORE_CRIU}
    if engine not in engines:
        raise ValueError(f"engine must be one of {sorted(engines)}, not {engine!r}")
    pid = ffi.new("pid_t *")
    flags = engines[engine] | (lib.FORKPOINT_RESTORE_EXACT_PIDS if exact_pids else 0)
    call(lib.forkpoint_restore, text(os.fspath(directory)), flags, pid)
    return int(pid[0])


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
