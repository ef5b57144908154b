"""Each test gets its own FORKPOINT_HOME (short: session sockets live in it
and a unix socket path has 108 bytes), removed afterwards with whatever
sessions a failing test left running."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FP_BUILD", REPO / "build"))


@pytest.fixture(autouse=True)
def fp_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="fp-py."))
    old = os.environ.get("FORKPOINT_HOME")
    os.environ["FORKPOINT_HOME"] = str(home)
    try:
        yield home
    finally:
        import forkpoint
        sessions = home / "sessions"
        for d in (sessions.iterdir() if sessions.exists() else []):
            try:
                forkpoint.Session.open(d.name).cleanup()
            except forkpoint.ForkpointError:
                pass
        if old is None:
            os.environ.pop("FORKPOINT_HOME", None)
        else:
            os.environ["FORKPOINT_HOME"] = old
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def targets() -> Path:
    t = BUILD / "tests" / "targets"
    if not (t / "ct_heap").exists():
        pytest.skip(f"no targets in {t}: run `make all` first")
    return t


def compiler() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    return cc


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)
