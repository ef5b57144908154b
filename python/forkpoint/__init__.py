"""forkpoint for Python: checkpoint, restore and branch running Linux
processes, through libforkpoint.so.0 (include/forkpoint.h).

    import forkpoint
    with forkpoint.Session.create(shell=True) as s:   # cleaned up at the end
        s.exec("cd /tmp && x=41")
        s.snap("a")
        s.exec("x=0")
        s.restore("a")
        assert s.exec("echo $((x+1))").stdout == "42\\n"

forkpoint.settings() and forkpoint.doctor() say what it runs with: every
setting and its source, and the CRIU it uses (or why none).

Failures raise ForkpointError subclasses carrying forkpoint's message.
"""
from __future__ import annotations

from .errors import (ForkpointError, ForkpointPermissionError, ForkpointTimeoutError, InvalidArgumentError,
                     NotAvailableError, NotFoundError, UnsupportedError)
from .images import decompress, dump, restore, restore_with, verify, wait
from .settings import CriuCandidate, DoctorReport, Setting, Settings, doctor, setting, settings
from .session import (Change, ExecResult, RestoreResult, Session, SessionInfo, SnapResult, Snapshot, cleanup, gc,
                      library_version, sessions)

__all__ = [
    "Session", "SessionInfo", "sessions", "ExecResult", "SnapResult", "RestoreResult", "Snapshot", "Change",
    "cleanup", "gc", "setting", "settings", "Setting", "Settings", "doctor", "DoctorReport", "CriuCandidate",
    "dump", "restore", "restore_with", "wait", "verify", "decompress", "library_version",
    "ForkpointError", "InvalidArgumentError", "NotFoundError", "UnsupportedError",
    "ForkpointTimeoutError", "ForkpointPermissionError", "NotAvailableError",
]
