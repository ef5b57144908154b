"""Sessions: a program (often a long-lived bash) under a forkpoint helper
that snapshots it, restores it and runs commands in it."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import errors as forkpoint_errors
from ._call import Info, call, call_info, call_items, ffi, lib, string, text


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
    hot: bool = False     #: a frozen copy is kept in memory for branches (snap(hot=...))
    hot_why: str = ""     #: why no frozen copy was kept, when one was asked for
    phases: str = ""      #: where the time went: "name ms name ms ..."
    info: Dict[str, str] = field(default_factory=dict)  #: everything forkpoint said, as strings


@dataclass(frozen=True)
class RestoreResult:
    """A session restore just done."""
    pid: int
    engine: str           #: "native" or "criu"
    fallback: str         #: why CRIU restored it, "" if native
    total_ms: float
    revived: bool = False   #: the session had ended: a new helper restored it
    in_place: bool = False  #: the same processes, only what changed written back
    info: Dict[str, str] = field(default_factory=dict)  #: everything forkpoint said, as strings


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
    dir: str = ""
    pids: str = ""


@dataclass(frozen=True)
class Change:
    """One path that differs between two snapshots' workspaces (:meth:`Session.diff`)."""
    change: str           #: "A" added, "D" deleted, "M" modified
    type: str             #: "f" file, "d" directory, "l" symbolic link, "o" other
    path: str             #: relative to the workspace
    what: Tuple[str, ...] #: for "M": of type, content, mode, owner, xattr, mtime


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
        self.started: Info = {}  #: for a branch: what starting it took (see branch)

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

    def snap(self, name: Optional[str] = None, *, hot: Union[bool, int] = False,
             tcp_established: bool = False, early_reply: bool = False) -> SnapResult:
        """Snapshots the session while it runs (memory, threads, fds, and
        its workspace's files). ``name`` default: "snap-N". ``hot``: also
        keep the processes frozen in memory (copy-on-write), so that
        :meth:`branch` forks them instead of restoring from disk; True keeps
        at most 2 hot snapshots in the session, a number 1..8 that many
        (the oldest is released first). ``tcp_established``: save its
        established TCP connections (TCP repair mode; root).
        ``early_reply``: return once the processes run again, before the
        images are written, when at most 32 MiB of pages are to be written
        (``info["early_reply"]`` says whether it did; not with ``hot``); the session's next request
        waits for them. If writing them fails the snapshot is not made (the
        next snapshot's ``why_full`` says so)."""
        limit = int(lib.FORKPOINT_HOT_DEFAULT_LIMIT) if hot is True else int(hot)
        flags = int(lib.FORKPOINT_SNAP_TCP_ESTABLISHED) if tcp_established else 0
        if early_reply:
            flags |= int(lib.FORKPOINT_SNAP_EARLY_REPLY)
        with self._lock:
            i = call_info(lib.forkpoint_session_snap_with, self._handle(), text(name) if name else ffi.NULL, limit,
                          flags)
        n = _numbers(i)
        return SnapResult(i.get("name", ""), i.get("dir", ""), int(n("processes")), int(n("threads")),
                          n("pause_ms"), n("total_ms"), int(n("pages")), int(n("bytes_written")),
                          n("incremental") == 1, i.get("why", ""), n("hot") == 1, i.get("hot_why", ""),
                          i.get("phases", ""), i)

    def restore(self, name: str) -> RestoreResult:
        """Sends the session back to snapshot ``name`` (same pids). If that
        fails half way, the session is as it was before. A session that has
        ended (stopped, or its program exited) comes back from the snapshot
        under a new helper (``revived``)."""
        with self._lock:
            i = call_info(lib.forkpoint_session_restore_with, self._handle(), text(name))
        n = _numbers(i)
        return RestoreResult(int(n("pid")), i.get("engine", ""), i.get("fallback", ""), n("total_ms"),
                             n("revived") == 1, n("in_place") == 1, i)

    def diff(self, a: str, b: str) -> List[Change]:
        """What changed in the session's workspace from snapshot ``a`` to
        snapshot ``b`` (a session started with ``workdir``), sorted by path."""
        items = call_items(lib.forkpoint_session_diff, text(self.name), text(a), text(b))
        return [Change(x["change"], x["type"], x["path"], tuple(w for w in x["what"].split(",") if w))
                for x in items]

    def branch(self, name: str, n: int = 1, *, branch_name: Optional[str] = None) -> List["Session"]:
        """Starts ``n`` new sessions from snapshot ``name`` while this one runs
        on, each in its own pid and mount namespaces (root only), all or
        none; ``n`` must be 1 to 64. ``branch_name``: their name (NAME-1..
        NAME-n for n > 1), default SESSION-bN. What each branch took (pid,
        ms, hot, ...) is in its ``started`` dict."""
        if not 1 <= n <= int(lib.FORKPOINT_BRANCH_MAX):
            raise forkpoint_errors.InvalidArgumentError(f"n must be 1 to 64, not {n}", 2)
        with self._lock:
            items = call_items(lib.forkpoint_session_branch_with, self._handle(), text(name),
                               text(branch_name) if branch_name else ffi.NULL, n)
        out = []
        for x in items:
            b = Session.open(x["name"])
            b.started = x
            out.append(b)
        return out

    def list(self, *, verify: bool = False) -> List[Snapshot]:
        """The session's snapshots, oldest first (of an ended session too).
        ``verify`` checks every file's hash, not only its size (reads every
        byte of every snapshot); one that fails is listed ``damaged``."""
        items = call_items(lib.forkpoint_snapshots_with, text(self.name),
                           lib.FORKPOINT_SNAPSHOTS_VERIFY if verify else 0)
        return [Snapshot(x["name"], int(x["created"]), float(x["pause_ms"]), int(x["pages"]), int(x["disk_bytes"]),
                         x["damaged"] == "1", x["damage"], x["dir"], x["pids"]) for x in items]

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


def _numbers(i: Info) -> Any:
    """A reader of i's numbers: absent or empty reads as 0."""
    def n(key: str) -> float:
        v = i.get(key, "")
        return float(v) if v else 0.0
    return n


def cleanup(name: str, *, force: bool = False) -> Info:
    """Removes session ``name`` completely: processes, mounts, directory.
    ``force`` also for a half-dead session (a helper that does not answer
    is killed, processes it left behind too, mounts detached); without it
    such leftovers are named in the error and nothing is removed. Returns
    killed, unmounted, helper_killed (strings)."""
    return call_info(lib.forkpoint_cleanup, text(name), lib.FORKPOINT_CLEANUP_FORCE if force else 0)


def gc(name: Optional[str] = None) -> List[Info]:
    """Frees the workspace layers and parent snapshots nothing uses, of
    session ``name`` or of every session. One dict per session: session,
    snaps_removed, snaps_kept, workspace, layers_removed, layers_kept, and
    error / snaps_error for what could not be collected (the others are
    collected anyway)."""
    return call_items(lib.forkpoint_gc, text(name) if name else ffi.NULL)
