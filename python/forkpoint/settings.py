"""What forkpoint runs with: its settings and where each came from
(forkpoint_config), and the CRIU it uses for restores its own engine cannot
do, with the reason each other candidate was refused (forkpoint_doctor).
An agent can check both before it relies on a session or a CRIU restore."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from ._call import Info, call_full, call_info, ffi, lib, text


@dataclass(frozen=True)
class Setting:
    """One setting, as every forkpoint call reads it: the environment's
    FORKPOINT_<KEY>, then $FORKPOINT_CONFIG, the user's and the system's
    config file, then the default."""
    key: str
    value: Optional[str]  #: None when the default applies
    source: str           #: the variable, "FILE:LINE", or "default"
    env: str              #: the environment variable that sets it
    default: str          #: the default, in words
    meaning: str


@dataclass(frozen=True)
class Settings:
    """Every setting, and the config files that were read for them."""
    files: List[str]              #: in the order they are read
    settings: Dict[str, Setting]  #: by key

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]


def _setting(i: Info) -> Setting:
    return Setting(i["key"], i["value"] if i.get("set") == "1" else None, i["source"], i["env"], i["default"],
                   i["meaning"])


def setting(key: str) -> Setting:
    """One setting. Raises InvalidArgumentError for an unknown key (the
    message names the known ones), and ForkpointError for a config file
    that forkpoint refuses (the message names the file, the line and the
    fix)."""
    return _setting(call_info(lib.forkpoint_config, text(key)))


def settings() -> Settings:
    """Every setting forkpoint knows, with its value and source."""
    top, items = call_full(lib.forkpoint_config, ffi.NULL)
    return Settings([f for f in top.get("files", "").split("\n") if f], {i["key"]: _setting(i) for i in items})


@dataclass(frozen=True)
class CriuCandidate:
    """A CRIU binary forkpoint considered."""
    path: str
    source: str           #: "FORKPOINT_CRIU", "setup prefix", "PATH", ...
    usable: bool          #: 4.x, passes `criu check`, dumps and restores a test process
    in_use: bool
    version: Optional[str]  #: "4.2.1"; None when unknown
    why: str              #: why it was refused, "" if usable
    cached: bool          #: the verdict came from an earlier test since this boot


@dataclass(frozen=True)
class DoctorReport:
    """Which CRIU forkpoint uses, and why the others were refused."""
    criu: Optional[str]   #: the path in use; None when none is usable (forkpoint's own engine still works)
    criu_version: Optional[str]
    candidates: List[CriuCandidate]
    setup_report: Optional[str]   #: the report `make setup` left, if any
    setup_report_text: str


def doctor(*, cached: bool = True, first: bool = False, require: bool = False) -> DoctorReport:
    """Surveys the CRIU candidates: the criu setting (alone, when set), the
    prefix `make setup` provisions, then `criu` on PATH.

    ``cached`` trusts verdicts found earlier since this boot (without it
    each candidate is tested again, up to a minute each); ``first`` stops at
    the first usable one; ``require`` raises UnsupportedError, naming every
    refusal and the fix, when none is usable."""
    flags = ((lib.FORKPOINT_DOCTOR_CACHED if cached else 0) | (lib.FORKPOINT_DOCTOR_FIRST if first else 0) |
             (lib.FORKPOINT_DOCTOR_REQUIRE if require else 0))
    top, items = call_full(lib.forkpoint_doctor, flags)
    cands = [CriuCandidate(i["path"], i["source"], i["usable"] == "1", i["in_use"] == "1", i["version"] or None,
                           i["why"], i["cached"] == "1") for i in items]
    return DoctorReport(top["criu"] or None, top["criu_version"] or None, cands, top.get("setup_report") or None,
                        top.get("setup_report_text", ""))


__all__ = ["Setting", "Settings", "setting", "settings", "CriuCandidate", "DoctorReport", "doctor"]
