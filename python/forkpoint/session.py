"""Sessions: a program (often a long-lived bash) under a forkpoint helper
that snapshots it, restores it and runs commands in it."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from . import errors as forkpoint_errors
from ._call import call, ffi, lib, string, text


def library_version() -> str:
    """The version of the loaded libforkpoint."""
    return string(lib.forkpoint_version())


@dataclass(frozen=True)
class ExecResult:
    """What a command run with :meth:`Session.exec` did."""
    exit_code: int        #: 128+N when signal N ended it; 124 when the timeout ended it
    stdout: str           #: decoded as UTF-8 (bad bytes replaced); see stdout_bytes
    stderr: str
    duration_ms: int
    timed_out: bool
    stdout_bytes: bytes
    stderr_bytes: bytes
    note: str = ""        #: something forkpoint says about the run, "" if nothing

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class SnapResult:
    """A snapshot just taken."""
    name: str
    dir: str
    processes: int
    threads: int
    pause_ms: float
    total_ms: float
    pages: int
    bytes_written: int
    incremental: bool
    why_full: str


@dataclass(frozen=True)
class RestoreResult:
    """A session restore just done."""
    pid: int
    engine: str           #: "native" or "criu"
    fallback: str         #: why CRIU restored it, "" if native
    total_ms: float


@dataclass(frozen=True)
class Snapshot:
    """One of a session's snapshots, as listed."""
    name: str
    created: int          #: unix seconds
    pause_ms: float
    pages: int
    disk_bytes: int
    damaged: bool         #: fails its manifest check: never restored
    damage: str


@dataclass(frozen=True)
class SessionInfo:
    """A session as :func:`sessions` lists it."""
    name: str
    state: str            #: starting, running, exited, or dead (its helper is gone)
    helper_pid: int
    pid: int              #: the session's program
    started: int          #: unix seconds
    detached: bool
    shim: bool
    shell: bool
    command: str
    cwd: str
    workdir: str          #: "" when the session has no workspace


def sessions(*, all: bool = False) -> List[SessionInfo]:
    """The sessions of this FORKPOINT_HOME, sorted by name: those running,
    or with ``all`` every session kept, ended ones too. Open one with
    :meth:`Session.open`."""
    out = ffi.new("forkpoint_session_info **")
    n = call(lib.forkpoint_sessions, lib.FORKPOINT_SESSIONS_ALL if all else 0, out)
    try:
        return [SessionInfo(string(s.name), string(s.state), int(s.helper_pid), int(s.target_pid),
                            int(s.started), bool(s.detached), bool(s.shim), bool(s.shell),
                            string(s.command), string(s.cwd), string(s.workdir))
                for s in (out[0][i] for i in range(n))]
    finally:
        lib.forkpoint_sessions_free(out[0])


class Session:
    """A handle on a forkpoint session. The session itself lives in its
    helper process: dropping the handle leaves it running; :meth:`cleanup`
    ends it and deletes what it kept. Used as a context manager, the
    session is cleaned up on exit. A handle may be used from several
    threads; its calls run one at a time."""

    def __init__(self, handle: Any) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self._h = handle
        self._lock = threading.Lock()

    # -- life cycle ------------------------------------------------------

    @classmethod
    def create(cls, *, workdir: Optional[str] = None, shell: bool = True, name: Optional[str] = None,
               argv: Optional[Sequence[str]] = None, shim: bool = True) -> "Session":
        """Starts a session: a bash fed by :meth:`exec` (``shell=True``, the
        default) or the program ``argv``. With ``workdir`` the program sees
        an overlay view of that directory, which is never written itself,
        and snapshots capture its files (root only). ``name``: a name of
        letters, digits, ``. _ -`` (default: made up)."""
        if shell and argv:
            raise ValueError("give argv or shell=True, not both")
        if not shell and not argv:
            raise ValueError("give argv, or shell=True")
        flags = (lib.FORKPOINT_SESSION_SHELL if shell else 0) | (0 if shim else lib.FORKPOINT_SESSION_NO_SHIM)
        keep = [ffi.new("char[]", text(a)) for a in (argv or [])]
        c_argv = ffi.new("char *[]", keep + [ffi.NULL]) if argv else ffi.NULL
        out = ffi.new("forkpoint_session **")
        call(lib.forkpoint_session_create, text(name) if name else ffi.NULL,
             text(os.fspath(workdir)) if workdir else ffi.NULL, flags, c_argv, out)
        return cls(ffi.gc(out[0], lib.forkpoint_session_close))

    @classmethod
    def open(cls, name: str) -> "Session":
        """A handle on an existing session (running or ended)."""
        out = ffi.new("forkpoint_session **")
        call(lib.forkpoint_session_open, text(name), out)
        return cls(ffi.gc(out[0], lib.forkpoint_session_close))

    def close(self) -> None:
        """Frees the handle now; the session runs on."""
        with self._lock:
            if self._h is not None:
                ffi.release(self._h)
                self._h = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.cleanup()
        finally:
            self.close()

    def _handle(self) -> Any:
        if self._h is None:
            raise ValueError("this Session handle is closed")
        return self._h

    @property
    def name(self) -> str:
        return string(lib.forkpoint_session_name(self._handle()))

    @property
    def pid(self) -> int:
        """The program's pid (after a restore, the restored one's)."""
        return int(lib.forkpoint_session_pid(self._handle()))

    def __repr__(self) -> str:
        return f"<forkpoint.Session {self.name!r} pid={self.pid}>" if self._h is not None else \
            "<forkpoint.Session (closed)>"

    # -- commands --------------------------------------------------------

    def exec(self, command: str, *, timeout: Optional[float] = None) -> ExecResult:
        """Runs a shell command line in the session (in its bash for a shell
        session: cd, variables and functions stay) and returns what it did.
        A failing command is not an exception: see ``exit_code``. After
        ``timeout`` seconds the command (not the shell) is ended: exit code
        124, ``timed_out`` set."""
        res = ffi.new("forkpoint_exec_result *")
        ms = 0 if timeout is None else max(1, int(timeout * 1000))
        with self._lock:
            call(lib.forkpoint_session_exec, self._handle(), text(command), ms, res)
        try:
            out = bytes(ffi.buffer(res.stdout_data, res.stdout_len))
            err = bytes(ffi.buffer(res.stderr_data, res.stderr_len))
        finally:
            lib.forkpoint_exec_result_release(res)
        return ExecResult(int(res.exit_code), out.decode(errors="replace"), err.decode(errors="replace"),
                          int(res.duration_ms), bool(res.timed_out), out, err, string(res.note))

    def snap(self, name: Optional[str] = None) -> SnapResult:
        """Snapshots the session while it runs (memory, threads, fds, and
        its workspace's files). ``name`` default: "snap-N"."""
        r = ffi.new("forkpoint_snap_result *")
        with self._lock:
            call(lib.forkpoint_session_snap, self._handle(), text(name) if name else ffi.NULL, r)
        return SnapResult(string(r.name), string(r.dir), r.processes, r.threads, r.pause_ms, r.total_ms,
                          int(r.pages), int(r.bytes_written), bool(r.incremental), string(r.why_full))

    def restore(self, name: str) -> RestoreResult:
        """Sends the session back to snapshot ``name`` (same pids). If that
        fails half way, the session is as it was before."""
        r = ffi.new("forkpoint_restore_result *")
        with self._lock:
            call(lib.forkpoint_session_restore, self._handle(), text(name), r)
        return RestoreResult(int(r.pid), string(r.engine), string(r.fallback), r.total_ms)

    def branch(self, name: str, n: int = 1) -> List["Session"]:
        """Starts ``n`` new sessions from snapshot ``name`` while this one runs
        on, each in its own pid and mount namespaces (root only). Raises
        NotAvailableError where the library was built without branch, and
        n must be 1 to 64."""
        if not 1 <= n <= 64:
            raise forkpoint_errors.InvalidArgumentError(f"n must be 1 to 64, not {n}", 2)
        out = ffi.new("forkpoint_session *[]", n)
        with self._lock:
            call(lib.forkpoint_session_branch, self._handle(), text(name), n, out)
        return [Session(ffi.gc(out[i], lib.forkpoint_session_close)) for i in range(n)]

    def list(self) -> List[Snapshot]:
        """The session's snapshots, oldest first."""
        out = ffi.new("forkpoint_snapshot **")
        with self._lock:
            n = call(lib.forkpoint_session_snapshots, self._handle(), out)
        try:
            return [Snapshot(string(s.name), int(s.created), s.pause_ms, int(s.pages), int(s.disk_bytes),
                             bool(s.damaged), string(s.damage)) for s in (out[0][i] for i in range(n))]
        finally:
            lib.forkpoint_snapshots_free(out[0])

    def rm(self, name: str) -> None:
        """Deletes snapshot ``name``."""
        with self._lock:
            call(lib.forkpoint_session_rm, self._handle(), text(name))

    def stop(self, *, kill: bool = False) -> None:
        """Ends the session's program and all it started (SIGKILL after 5 s,
        at once with ``kill``). The snapshots stay."""
        with self._lock:
            call(lib.forkpoint_session_stop, self._handle(), 1 if kill else 0)

    def cleanup(self) -> None:
        """Ends the session (if it runs) and deletes its snapshots,
        workspace layers and log. The handle stays usable for ``name``."""
        with self._lock:
            call(lib.forkpoint_session_cleanup, self._handle())
