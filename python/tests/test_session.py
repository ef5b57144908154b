"""forkpoint.Session against real sessions: a real bash under a real helper."""
from __future__ import annotations

import os

import pytest

import forkpoint


def test_exec_keeps_shell_state_and_separates_streams() -> None:
    with forkpoint.Session.create(shell=True, name="py-exec") as s:
        assert s.name == "py-exec" and s.pid > 0
        r = s.exec("cd /tmp && x=41; echo $((x+1)); echo oops >&2; (exit 3)")
        assert (r.exit_code, r.stdout, r.stderr) == (3, "42\n", "oops\n")
        assert not r.ok and r.duration_ms >= 0 and not r.timed_out
        r = s.exec("echo $x; pwd")
        assert r.stdout == "41\n/tmp\n" and r.ok
        r = s.exec("printf 'a\\0b\\377'")
        assert r.stdout_bytes == b"a\x00b\xff"


def test_exec_timeout_ends_the_command_not_the_shell() -> None:
    with forkpoint.Session.create(shell=True) as s:
        r = s.exec("y=7; sleep 30", timeout=0.5)
        assert r.timed_out and r.exit_code == 124
        assert s.exec("echo $y").stdout == "7\n"


def test_snap_restore_list_rm() -> None:
    with forkpoint.Session.create(shell=True, name="py-snap") as s:
        s.exec("v=before; f() { echo fun-$v; }")
        snap = s.snap("a")
        assert snap.name == "a" and snap.processes >= 1 and os.path.isdir(snap.dir)
        s.exec("v=after; unset -f f")
        r = s.restore("a")
        assert r.pid == s.pid and r.engine in ("in-place", "native", "criu")
        assert s.exec("f").stdout == "fun-before\n"
        assert [x.name for x in s.list()] == ["a"]
        assert not s.list()[0].damaged
        s.snap()  # a default name
        names = [x.name for x in s.list()]
        assert len(names) == 2 and names[0] == "a"
        s.rm("a")
        assert [x.name for x in s.list()] == names[1:]


def test_snap_early_reply() -> None:
    """early_reply: the reply before the images are written; the session's
    next request (and list) finds the snapshot there, and it restores."""
    with forkpoint.Session.create(shell=True, name="py-early") as s:
        s.exec("v=early")
        snap = s.snap("e", early_reply=True)
        assert snap.info.get("early_reply") == "1" and snap.name == "e"
        s.exec("v=later")
        assert [x.name for x in s.list()] == ["e"] and os.path.isdir(snap.dir)
        s.restore("e")
        assert s.exec("echo $v").stdout == "early\n"
        with pytest.raises(forkpoint.ForkpointError, match="hot snapshot cannot reply early"):
            s.snap("h", hot=True, early_reply=True)


def test_errors_carry_forkpoint_messages() -> None:
    with pytest.raises(forkpoint.NotFoundError, match="no session named 'py-none'"):
        forkpoint.Session.open("py-none")
    with forkpoint.Session.create(shell=True, name="py-err") as s:
        with pytest.raises(forkpoint.NotFoundError, match="no complete snapshot 'nope'") as e:
            s.restore("nope")
        assert e.value.code == 3 and "nope" in e.value.message
        with pytest.raises(forkpoint.ForkpointError, match="snapshot name"):
            s.snap("bad/name")
        with pytest.raises(forkpoint.NotFoundError):
            s.rm("nope")
    with pytest.raises(ValueError):
        forkpoint.Session.create(shell=False)


def test_branch_or_a_clear_error() -> None:
    """Branches of a program session, where the library has branch; a clear
    NotAvailableError where it has not."""
    s = forkpoint.Session.create(shell=False, argv=["sleep", "600"], name="py-br")
    try:
        s.snap("a")
        try:
            branches = s.branch("a", n=2)
        except forkpoint.NotAvailableError as e:
            assert "not available in this build" in str(e) and e.code == 7
            return
        try:
            assert len(branches) == 2 and len({b.name for b in branches} | {s.name}) == 3
            for b in branches:
                r = b.exec("echo in-branch")
                assert (r.exit_code, r.stdout) == (0, "in-branch\n")
        finally:
            for b in branches:
                b.cleanup()
    finally:
        s.cleanup()


def test_branch_of_a_shell_session_keeps_its_state() -> None:
    """Each branch of a shell session is a shell of its own, on its own
    terminal, with the snapshot's variables and cwd; what one branch does,
    the others and the original do not see."""
    with forkpoint.Session.create(shell=True) as s:
        s.exec("cd /tmp && v=at-snap")
        s.snap("a")
        s.exec("v=after-snap")
        with pytest.raises(forkpoint.InvalidArgumentError):
            s.branch("a", n=0)
        try:
            branches = s.branch("a", n=2)
        except forkpoint.NotAvailableError as e:
            assert "not available in this build" in str(e)
            return
        try:
            for i, b in enumerate(branches):
                assert b.exec("echo $v $(pwd)").stdout == "at-snap /tmp\n"
                b.exec(f"v=branch-{i}")
            assert [b.exec("echo $v").stdout for b in branches] == ["branch-0\n", "branch-1\n"]
            assert s.exec("echo $v").stdout == "after-snap\n"
        finally:
            for b in branches:
                b.cleanup()


def test_cleanup_ends_the_session_and_removes_it(fp_home) -> None:
    s = forkpoint.Session.create(shell=True, name="py-clean")
    s.snap("a")
    helper_dir = fp_home / "sessions" / "py-clean"
    assert helper_dir.is_dir()
    pid = s.pid
    s.cleanup()
    assert not helper_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(forkpoint.NotFoundError):
        forkpoint.Session.open("py-clean")
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.exec("true")


def test_program_session_and_stop() -> None:
    s = forkpoint.Session.create(shell=False, argv=["sleep", "600"], name="py-prog")
    try:
        assert forkpoint.Session.open("py-prog").pid == s.pid
        s.stop()
        with pytest.raises(ProcessLookupError):
            os.kill(s.pid, 0)
        with pytest.raises(forkpoint.NotFoundError, match="not running"):
            s.exec("true")
    finally:
        s.cleanup()


def test_sessions_lists_running_and_ended() -> None:
    s = forkpoint.Session.create(shell=False, argv=["sleep", "600"], name="py-list")
    try:
        s.snap("a")
        running = {i.name: i for i in forkpoint.sessions()}
        assert "py-list" in running
        info = running["py-list"]
        assert info.pid == s.pid and info.state == "running" and not info.shell
        assert info.command.startswith("sleep 600") and info.helper_pid > 0
        s.stop()
        assert "py-list" not in {i.name for i in forkpoint.sessions()}
        ended = {i.name: i for i in forkpoint.sessions(all=True)}
        assert ended["py-list"].state in ("exited", "dead")
        assert [x.name for x in forkpoint.Session.open("py-list").list()] == ["a"]
    finally:
        s.cleanup()
