"""The image layer (dump, restore, wait, verify) on a self-checking target
(tests/targets/README.md), and the binding's declarations against the
header's real layout."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import forkpoint
from conftest import REPO, compiler, run


def wait_line(status: Path, prefix: str, deadline_s: float = 30) -> str:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for line in status.read_text().splitlines() if status.exists() else []:
            if line.startswith(prefix):
                return line
        time.sleep(0.01)  # polling a condition with a deadline, not a wait for time
    raise AssertionError(f"no '{prefix}' line in {status} within {deadline_s} s")


def verify_and_end(pid: int, status: Path) -> None:
    """Has a restored ct_heap check its memory (SIGUSR2), then ends it and
    waits for its exit code 0."""
    os.kill(pid, signal.SIGUSR2)
    assert " ok " in wait_line(status, "verify 1") + " "
    os.kill(pid, signal.SIGTERM)
    assert forkpoint.wait(pid, timeout=30) == 0


def test_dump_kill_restore_verify(targets: Path, tmp_path: Path) -> None:
    status = tmp_path / "status"
    p = subprocess.Popen([str(targets / "ct_heap"), str(status), "--setsid", "--quiet-stdio", "--same-pid"])
    try:
        wait_line(status, "ready")
        img = tmp_path / "img"
        forkpoint.dump(p.pid, img, leave_running=False)
        p.wait(timeout=30)  # the dump, its tracer, may already have reaped it (forkpoint.h)
        with pytest.raises(ProcessLookupError):
            os.kill(p.pid, 0)
        forkpoint.verify(img)
        pid = forkpoint.restore(img, exact_pids=True)
        assert pid == p.pid
        verify_and_end(pid, status)
    finally:
        if p.poll() is None:
            p.kill()


def test_image_errors(tmp_path: Path) -> None:
    with pytest.raises(forkpoint.ForkpointError) as e:
        forkpoint.verify(tmp_path / "missing")
    assert "missing" in e.value.message
    with pytest.raises(forkpoint.ForkpointError):
        forkpoint.dump(2**22 + 12345, tmp_path / "x")
    with pytest.raises(ValueError):
        forkpoint.restore(tmp_path, engine="warp")


def test_declarations_match_the_header(tmp_path: Path) -> None:
    """cffi's idea of each struct (ABI mode) against the C compiler's."""
    from forkpoint._native import ffi
    structs = {"forkpoint_error": ["code", "errnum", "message"],
               "forkpoint_exec_result": ["exit_code", "duration_ms", "stdout_data", "stderr_len", "note"],
               "forkpoint_exec_options": ["command", "argv", "timeout_ms", "output", "output_arg"],
               "forkpoint_snap_result": ["name", "dir", "pause_ms", "pages", "why_full"],
               "forkpoint_restore_result": ["pid", "engine", "fallback", "total_ms"],
               "forkpoint_snapshot": ["name", "created", "disk_bytes", "damaged", "damage"]}
    src = ['#include <stdio.h>', '#include <stddef.h>', '#include "forkpoint.h"', "int main(void) {"]
    expect = []
    for t, fields in structs.items():
        src.append(f'printf("%zu\\n", sizeof({t}));')
        expect.append(ffi.sizeof(t))
        for f in fields:
            src.append(f'printf("%zu\\n", offsetof({t}, {f}));')
            expect.append(ffi.offsetof(t, f))
    src.append("return 0; }")
    (tmp_path / "layout.c").write_text("\n".join(src))
    r = run(compiler(), "-I", str(REPO / "include"), "-o", str(tmp_path / "layout"), str(tmp_path / "layout.c"))
    assert r.returncode == 0, r.stderr
    got = [int(x) for x in run(str(tmp_path / "layout")).stdout.split()]
    assert got == expect
