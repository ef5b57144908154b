"""Loads libforkpoint.so.0 with cffi in ABI mode.

ABI mode (ffi.dlopen) rather than API mode: nothing is compiled when the
package is installed, so it needs no compiler and no Python headers, only
Debian's python3-cffi and the library. ABI mode's weak point is that the
declarations must match the library's structs exactly; here they cannot
drift, because they are read from the installed forkpoint.h itself (the
header that libforkpoint.so.0 was built with), not copied into this file.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional, Tuple

import cffi

_REPO = Path(__file__).resolve().parents[2]


def _pkgconfig(var: str) -> Optional[str]:
    if not shutil.which("pkg-config"):
        return None
    r = subprocess.run(["pkg-config", f"--variable={var}", "forkpoint"],
                       capture_output=True, text=True, check=False)
    out = r.stdout.strip()
    return out if r.returncode == 0 and out else None


def _find() -> Tuple[str, Path]:
    """The library and its header: $FORKPOINT_LIB (header: $FORKPOINT_HEADER,
    else ../include/ from it, else this source tree's), else this source
    tree's build, else an installation pkg-config knows."""
    header_env = os.environ.get("FORKPOINT_HEADER")
    lib_env = os.environ.get("FORKPOINT_LIB")
    if lib_env:
        lib = Path(lib_env)
        headers = [Path(header_env)] if header_env else \
            [lib.resolve().parent.parent / "include" / "forkpoint.h", _REPO / "include" / "forkpoint.h"]
        header = next((h for h in headers if h.exists()), None)
        if not lib.exists() or header is None:
            raise ImportError(f"FORKPOINT_LIB={lib_env}: " + ("no such file" if not lib.exists() else
                              f"no forkpoint.h found for it (looked at {', '.join(map(str, headers))}); "
                              "set FORKPOINT_HEADER"))
        return str(lib), header
    candidates = [(_REPO / "build" / "lib" / "libforkpoint.so.0", _REPO / "include" / "forkpoint.h")]
    libdir, incdir = _pkgconfig("libdir"), _pkgconfig("includedir")
    if libdir and incdir:
        candidates.append((Path(libdir) / "libforkpoint.so.0", Path(incdir) / "forkpoint.h"))
    for lib, header in candidates:
        header = Path(header_env) if header_env else header
        if lib.exists() and header.exists():
            return str(lib), header
    looked = ", ".join(str(lib) for lib, _ in candidates)
    raise ImportError(f"libforkpoint.so.0 with its forkpoint.h not found (looked for {looked}); "
                      "build it with `make`, install it with `make install`, or set FORKPOINT_LIB")


def _declarations(header: Path) -> str:
    """forkpoint.h as cffi's cdef takes it: no comments, no preprocessor."""
    text = header.read_text()
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "typedef int pid_t;\n" + "\n".join(lines)


def load() -> Tuple[cffi.FFI, Any, str]:
    lib_path, header = _find()
    ffi = cffi.FFI()
    ffi.cdef(_declarations(header))
    return ffi, ffi.dlopen(lib_path), lib_path


ffi, lib, LIBRARY_PATH = load()
