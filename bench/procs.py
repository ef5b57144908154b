"""Processes for the benchmark: running a tool with its wall time and peak
memory (wait4's rusage, through bench_runwait.c), starting targets the way both tools expect them
(own session, stdio on /dev/null), and waiting for pids to die and be free.

Every wait has a deadline. The driver makes itself a child subreaper, so a
process restored with -d (orphaned when the restore command exits) is
re-parented to the driver instead of PID 1, which here reaps 1-2 s late: the
driver reaps it at once and the pid is free for the next same-pid restore.
"""
import ctypes
import os
import re
import resource
import signal
import subprocess
import time

PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")
RUNWAIT = "bench_runwait"  # set by the driver to the snapshot's copy

# pids this driver started or restored; killed by cleanup()
_owned = set()
_tool_pgid = None


def now():
    return time.monotonic()


def boot_ticks():
    """Now in /proc/PID/stat starttime units (clock ticks since boot)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) * CLK_TCK


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def run_tool(argv, out_path, timeout_s):
    """Runs argv through bench_runwait (in a process group of its own, so
    cleanup can kill both) with stdout and stderr in out_path. Returns rc
    (negative: killed by that signal), wall_ms (fork to exit, measured by
    bench_runwait), maxrss_kb (wait4's peak RSS of the command), timed_out and
    the command's output text."""
    global _tool_pgid
    proc = subprocess.Popen([RUNWAIT, out_path, str(int(timeout_s))] + argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, process_group=0)
    _tool_pgid = proc.pid
    try:
        report, err = proc.communicate()
    except BaseException:  # interrupted: the tool must not outlive the run
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    finally:
        _tool_pgid = None
    m = re.match(r"rc=(-?\d+) wall_ns=(\d+) maxrss_kb=(\d+) timed_out=([01])", report)
    if proc.returncode != 0 or not m:
        raise RuntimeError("bench_runwait failed (%s): %s" % (proc.returncode, err.strip()))
    with open(out_path, errors="replace") as f:
        text = f.read()
    return {"rc": int(m.group(1)), "wall_ms": int(m.group(2)) / 1e6, "maxrss_kb": int(m.group(3)),
            "timed_out": m.group(4) == "1", "output": text}


def start_target(argv, cwd, fds=None):
    """Starts argv as a session leader with stdio on /dev/null. fds maps
    target fd numbers to our fds to pass (e.g. {3: r, 4: w})."""
    fds = fds or {}

    def place_fds():
        for target_fd, ours in fds.items():
            os.dup2(ours, target_fd)
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=place_fds if fds else None, pass_fds=tuple(fds))
    _owned.add(proc.pid)
    return proc


def stat_fields(pid):
    """(state, starttime) of pid, or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def alive(pid):
    st = stat_fields(pid)
    return st is not None and st[0] not in "ZXx"


def wchan(pid):
    """Where pid sleeps in the kernel ("" when running or gone)."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read()
    except OSError:
        return ""


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def _reap(pid):
    """Reaps pid if it is our (possibly adopted) child and has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return False


def wait_gone(pid, timeout_s):
    """Waits until pid no longer exists (reaping it if it is ours)."""
    deadline = now() + timeout_s
    delay = 0.001
    while True:
        _reap(pid)
        if stat_fields(pid) is None:
            _owned.discard(pid)
            return True
        if now() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def kill_restored(pid, not_before_ticks, timeout_s=20):
    """Kills the process at pid if it was created after not_before_ticks (so
    a restored or half-restored copy, never an unrelated process that took
    the pid), then waits until the pid is free. True when the pid is free."""
    st = stat_fields(pid)
    if st is None:
        return True
    if st[1] + 1 < not_before_ticks:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return wait_gone(pid, timeout_s)


def stop_target(proc, timeout_s=20):
    """Kills a target we started (if still running) and reaps it."""
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
    _owned.discard(proc.pid)


def own(pid):
    _owned.add(pid)


def reap_strays():
    """Reaps zombies re-parented to us (we are a subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cleanup():
    """Kills every process this driver started or restored, and a running tool."""
    if _tool_pgid:
        try:
            os.killpg(_tool_pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # Our children include restored processes adopted as their restore
    # command exited, possibly before we learned their pid.
    victims = set(_owned) | set(children())
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in victims:
        wait_gone(pid, 5)
    reap_strays()


def children():
    me, out = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    text = f.read()
            except OSError:
                continue
            if int(text[text.rindex(")") + 2:].split()[1]) == me:
                out.append(int(name))
    return out


def cpu_snapshot():
    """(wall s, CPU s the whole machine was busy, CPU s of this driver and
    every process it has reaped). All our processes end up reaped by us
    (targets are our children, restored ones are adopted, tools are reaped
    by bench_runwait, which we reap), so between two snapshots taken with
    nothing of ours running, busy minus ours is other work on the machine
    (plus kernel threads such as writeback, some of it caused by us)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK  # all but idle and iowait
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        ours += ru.ru_utime + ru.ru_stime
    return now(), busy, ours


def other_cpu(before, after):
    """Average number of cores busy with work not ours between two snapshots."""
    wall = after[0] - before[0]
    return max(0.0, ((after[1] - before[1]) - (after[2] - before[2])) / wall) if wall > 0 else 0.0


def wait_file_line(path, offset, match, timeout_s):
    """Polls path from byte offset for a line for which match(line) is not
    None; returns (that value, time seen) or (None, None) at the deadline."""
    deadline = now() + timeout_s
    delay = 0.0005
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        for line in data.decode(errors="replace").splitlines():
            got = match(line)
            if got is not None:
                return got, now()
        if now() > deadline:
            return None, None
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
