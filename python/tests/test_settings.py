"""forkpoint.settings(), setting() and doctor() (forkpoint_config and
forkpoint_doctor of version 0.3): values and their sources from the
environment and a config file, refused files and keys, and the CRIU survey
agreeing with the `forkpoint` command's."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

import forkpoint
from conftest import BUILD, run


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No FORKPOINT_CONFIG, and a user config dir of the test's own."""
    monkeypatch.delenv("FORKPOINT_CONFIG", raising=False)
    monkeypatch.delenv("FORKPOINT_CRIU_PROBE_TIMEOUT", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    yield tmp_path


def test_settings_and_their_sources(clean_env: Path, fp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    all_ = forkpoint.settings()
    assert {"home", "criu", "criu_prefix", "criu_probe_timeout"} <= set(all_.settings)
    home = all_["home"]
    assert home.value == str(fp_home) and home.source == "FORKPOINT_HOME" and home.env == "FORKPOINT_HOME"
    t = all_["criu_probe_timeout"]
    assert t.value is None and t.source == "default" and t.default == "20" and t.meaning

    conf = clean_env / "explicit"
    conf.write_text("# a comment\ncriu_probe_timeout = 9\n")
    conf.chmod(0o600)
    monkeypatch.setenv("FORKPOINT_CONFIG", str(conf))
    s = forkpoint.setting("criu_probe_timeout")
    assert (s.value, s.source) == ("9", f"{conf}:2")
    assert str(conf) in forkpoint.settings().files
    monkeypatch.setenv("FORKPOINT_CRIU_PROBE_TIMEOUT", "11")
    s = forkpoint.setting("criu_probe_timeout")
    assert (s.value, s.source) == ("11", "FORKPOINT_CRIU_PROBE_TIMEOUT")
    # The command reads the same.
    out = run(str(BUILD / "bin" / "forkpoint"), "config", "criu_probe_timeout")
    assert out.returncode == 0 and out.stdout == "11\n", out


def test_unknown_key_and_refused_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(forkpoint.InvalidArgumentError) as e:
        forkpoint.setting("criu_probe_timout")
    assert "criu_probe_timout" in e.value.message and "criu_probe_timeout" in e.value.message
    conf = clean_env / "broken"
    conf.write_text("criu_probe_timeout = 3\nhoem = /tmp\n")
    conf.chmod(0o600)
    monkeypatch.setenv("FORKPOINT_CONFIG", str(conf))
    for call in (forkpoint.settings, lambda: forkpoint.setting("home")):
        with pytest.raises(forkpoint.ForkpointError) as e:
            call()
        assert f"{conf}:2: unknown setting `hoem`" in e.value.message


def test_doctor_agrees_with_the_command() -> None:
    fp = str(BUILD / "bin" / "forkpoint")
    rep = forkpoint.doctor(cached=True, first=True)
    assert rep.candidates
    cli = run(fp, "doctor", "--criu-path")
    if rep.criu is None:
        assert cli.returncode == 4 and all(not c.usable and c.why for c in rep.candidates)
        with pytest.raises(forkpoint.UnsupportedError):
            forkpoint.doctor(cached=True, first=True, require=True)
        return
    assert cli.returncode == 0 and cli.stdout.strip() == rep.criu, cli
    used = [c for c in rep.candidates if c.in_use]
    assert len(used) == 1 and used[0].usable and used[0].path == rep.criu and used[0].why == ""
    assert rep.criu_version and rep.criu_version.startswith("4.") and used[0].version == rep.criu_version


def test_doctor_names_a_refused_explicit_criu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-criu"
    monkeypatch.setenv("FORKPOINT_CRIU", str(missing))
    rep = forkpoint.doctor(cached=False)
    assert rep.criu is None and len(rep.candidates) == 1
    c = rep.candidates[0]
    assert c.path == str(missing) and c.source == "FORKPOINT_CRIU" and not c.usable and not c.in_use
    assert "does not exist" in c.why
    with pytest.raises(forkpoint.UnsupportedError) as e:
        forkpoint.doctor(require=True)
    assert "FORKPOINT_CRIU is set but refused" in e.value.message and "unset it" in e.value.message
    assert os.environ["FORKPOINT_CRIU"] == str(missing)  # the library changed nothing of ours
