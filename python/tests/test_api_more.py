"""The calls of version 0.2 of the C API through the binding: dump and
restore with every option, decompress, snap --hot, branch by name, the
revival of an ended session, list --verify, gc, diff and cleanup --force,
on real processes."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import forkpoint
from test_images import verify_and_end, wait_line


def test_dump_with_options_decompress_restore_with(targets: Path, tmp_path: Path) -> None:
    status = tmp_path / "status"
    p = subprocess.Popen([str(targets / "ct_heap"), str(status), "--setsid", "--quiet-stdio", "--same-pid"])
    try:
        wait_line(status, "ready")
        img, log = tmp_path / "img", tmp_path / "dump.log"
        st = forkpoint.dump(p.pid, img, leave_running=False, zstd_level=3, threads=1, timeout=5, verbose=True,
                            log=log)
        p.wait(timeout=30)
        assert st["processes"] == "1" and int(st["pages"]) > 0 and float(st["pause_ms"]) > 0
        assert log.stat().st_size > 0 and not (img / "dump.log").exists()
        assert list(img.glob("pages-*.fpz"))
        forkpoint.decompress(img, verify=True)
        assert list(img.glob("pages-*.img")) and not list(img.glob("pages-*.fpz"))
        forkpoint.verify(img)
        r = forkpoint.restore_with(img, exact_pids=True, engine="native", timeout=30, verbosity=2,
                                   log=tmp_path / "restore.log")
        pid = int(r["pid"])
        assert pid == p.pid and int(r["wait_pid"]) == pid and r["engine"] == "native" and r["verify_note"] == ""
        assert (tmp_path / "restore.log").exists()
        verify_and_end(pid, status)
    finally:
        if p.poll() is None:
            p.kill()


def test_option_errors_name_the_allowed_values(tmp_path: Path) -> None:
    me = os.getpid()
    with pytest.raises(forkpoint.InvalidArgumentError, match=r"zstd level 0 .*-7\.\.-1 or 1\.\.19"):
        forkpoint.dump(me, tmp_path / "a", zstd_level=0)
    with pytest.raises(forkpoint.InvalidArgumentError, match=r"compression threads 17 .*1\.\.16"):
        forkpoint.dump(me, tmp_path / "a", threads=17)
    with pytest.raises(ValueError, match="pages must be one of"):
        forkpoint.dump(me, tmp_path / "a", pages="warp")
    with pytest.raises(forkpoint.InvalidArgumentError, match="a CRIU flag starts with --"):
        forkpoint.restore_with(tmp_path, criu_flags=["file-locks"])
    with pytest.raises(forkpoint.InvalidArgumentError, match="log verbosity 9"):
        forkpoint.restore_with(tmp_path, verbosity=9)
    with pytest.raises(forkpoint.ForkpointError) as e:
        forkpoint.decompress(tmp_path / "missing", verify=True)
    assert "missing" in e.value.message
    assert not (tmp_path / "a").exists()


def test_restore_revives_an_ended_session() -> None:
    with forkpoint.Session.create(shell=True, name="py-revive") as s:
        s.exec("cd /tmp && v=kept")
        s.snap("a")
        s.stop()
        with pytest.raises(forkpoint.NotFoundError, match="not running"):
            s.exec("true")
        r = s.restore("a")
        assert r.revived and r.pid > 0 and r.pid == s.pid
        assert s.exec("echo $v $(pwd)").stdout == "kept /tmp\n"


def test_hot_snap_and_named_branches() -> None:
    if os.geteuid() != 0:
        pytest.skip("branch needs root")
    s = forkpoint.Session.create(shell=False, argv=["sleep", "600"], name="py-hot")
    try:
        r = s.snap("h", hot=True)
        assert r.name == "h" and (r.hot or r.hot_why) and r.phases
        assert r.info["hot"] in ("0", "1")
        with pytest.raises(forkpoint.InvalidArgumentError, match="hot limit"):
            s.snap("x", hot=9)
        branches = s.branch("h", n=2, branch_name="py-hb")
        try:
            assert [b.name for b in branches] == ["py-hb-1", "py-hb-2"]
            for b in branches:
                assert int(b.started["pid"]) == b.pid and int(b.started["ns_pid"]) > 0
                assert b.started["engine"] in ("native", "criu") and float(b.started["ms"]) > 0
                assert b.exec("echo in-branch").stdout == "in-branch\n"
        finally:
            for b in branches:
                b.cleanup()
    finally:
        s.cleanup()


def test_list_verify_gc_and_cleanup(fp_home: Path) -> None:
    s = forkpoint.Session.create(shell=True, name="py-gc")
    s.exec("x=1")
    s.snap("a")
    s.exec("x=2")
    s.snap("b")
    snaps = s.list(verify=True)
    assert [x.name for x in snaps] == ["a", "b"] and not any(x.damaged for x in snaps)
    assert all(os.path.isdir(x.dir) and x.pids for x in snaps)
    s.rm("a")
    done = forkpoint.gc("py-gc")
    assert [d["session"] for d in done] == ["py-gc"] and not done[0].get("error") and not done[0].get("snaps_error")
    assert {d["session"] for d in forkpoint.gc()} == {"py-gc"}
    with pytest.raises(forkpoint.NotFoundError):
        forkpoint.cleanup("py-none")
    pid = s.pid
    r = forkpoint.cleanup("py-gc", force=True)
    assert r["helper_killed"] == "0" and not (fp_home / "sessions" / "py-gc").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    s.close()


def test_diff_of_two_snapshots(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a workspace needs root")
    work = tmp_path / "work"
    work.mkdir()
    (work / "old.txt").write_text("old\n")
    (work / "same.txt").write_text("same\n")
    with forkpoint.Session.create(shell=True, workdir=str(work), name="py-diff") as s:
        s.snap("a")
        r = s.exec("rm old.txt && echo new > new.txt && chmod 600 same.txt")
        assert r.ok, r.stderr
        s.snap("b")
        changes = {c.path: c for c in s.diff("a", "b")}
        assert changes["new.txt"].change == "A" and changes["new.txt"].type == "f"
        assert changes["old.txt"].change == "D"
        assert changes["same.txt"].change == "M" and "mode" in changes["same.txt"].what
        assert s.diff("a", "a") == []
    plain = forkpoint.Session.create(shell=True, name="py-nows")
    try:
        with pytest.raises(forkpoint.NotFoundError, match="has no workspace"):
            plain.diff("a", "b")
    finally:
        plain.cleanup()
    assert (work / "old.txt").read_text() == "old\n"  # the directory itself is never written
