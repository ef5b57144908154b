"""The benchmark workloads: how to start each one (the same way for both
tools: own session, stdio on /dev/null) and how to prove that a process at a
pid is the original's state (after a --leave-running dump or a restore).

Most speak the status-file protocol of tests/targets/ct_proto.h: "ready PID"
once set up, then SIGUSR2 -> "verify N ok pid=PID ..." or "verify N FAIL".
redis is checked over its own protocol (DBSIZE and a sampled key).
"""
import os
import random
import re
import signal
import socket
import subprocess
import time

import procs

READY_TIMEOUT_S = 180
VERIFY_TIMEOUT_S = 120
VERIFY_RE = re.compile(r"^verify (\d+) (ok|FAIL) pid=(\d+)(.*)$")


class Target:
    """A started workload process: its pid, the Popen, and what verification
    compares against."""

    def __init__(self, proc, status=None):
        self.proc, self.pid, self.status = proc, proc.pid, status
        self.token, self.exe, self.addr = None, None, None


class Workload:
    name, label, mem_mib = "", "", None

    def __init__(self, root, bins):
        self.root, self.bins = root, bins

    def argv(self, status):
        raise NotImplementedError

    def start(self, work, serial):
        status = os.path.join(work, "%s-%d.status" % (self.name, serial))
        t = Target(self._spawn(work, status), status)
        line, _ = procs.wait_file_line(status, 0, lambda l: l if l.startswith(("ready ", "error ")) else None,
                                       READY_TIMEOUT_S)
        if line is None or not line.startswith("ready %d" % t.pid):
            procs.stop_target(t.proc)
            raise RuntimeError("%s did not become ready: %s" % (self.name, line or "timeout"))
        m = re.search(r"token=(\S+)", line)
        t.token = m.group(1) if m else None
        t.exe = procs.exe_of(t.pid)
        return t

    def _spawn(self, work, status):
        return procs.start_target(self.argv(status), work)

    def before_dump(self, t):
        """Called before every dump of t (both tools)."""

    def check_identity(self, t):
        """None if pid runs the workload's program, else why not."""
        if not procs.alive(t.pid):
            return "process %d is not running" % t.pid
        exe = procs.exe_of(t.pid)
        if exe != t.exe:
            return "process %d runs %s, expected %s" % (t.pid, exe, t.exe)
        return None

    def verify(self, t):
        """(True, line) when the process at t.pid proves its state, else
        (False, why)."""
        why = self.check_identity(t)
        if why:
            return False, why
        offset = procs.file_size(t.status)
        try:
            os.kill(t.pid, signal.SIGUSR2)
        except ProcessLookupError:
            return False, "process %d vanished" % t.pid

        def match(line):
            m = VERIFY_RE.match(line)
            return line if m and int(m.group(3)) == t.pid else None
        line, _ = procs.wait_file_line(t.status, offset, match, VERIFY_TIMEOUT_S)
        if line is None:
            return False, "no verify line within %d s (alive: %s)" % (VERIFY_TIMEOUT_S, procs.alive(t.pid))
        if " ok " not in line:
            return False, line
        if t.token and "token=%s" % t.token not in line:
            return False, "wrong token: %s (expected %s)" % (line, t.token)
        return True, line


class Heap(Workload):
    """ct_heap: N MiB of semi-compressible patterned heap."""

    def __init__(self, root, bins, mib):
        super().__init__(root, bins)
        self.mib = self.mem_mib = mib
        self.name = "heap%s" % ("%dG" % (mib // 1024) if mib >= 1024 else "%dM" % mib)
        self.label = "C heap %s" % ("%d GiB" % (mib // 1024) if mib >= 1024 else "%d MiB" % mib)

    def argv(self, status):
        return [os.path.join(self.bins, "ct_heap"), status, "--mib=%d" % self.mib]


class Threads(Workload):
    name, label = "threads16", "C, 16 threads"

    def argv(self, status):
        return [os.path.join(self.bins, "bench_threads"), status]


class Bash(Workload):
    name, label = "bash", "idle bash"

    def argv(self, status):
        with open(os.path.join(self.root, "bench/target_bash.sh")) as f:
            script = f.read()
        return ["/bin/bash", "-c", script, "bash", status]

    def verify(self, t):
        # bash runs a trap only after the system call it is in returns. A
        # signal that lands just before a (restarted) read() starts is noted
        # and then waits with it forever: a race of bash's, not of the tools.
        # So signal only once the process is asleep in the pipe read.
        deadline = time.monotonic() + 10
        while "pipe_read" not in procs.wchan(t.pid) and time.monotonic() < deadline:
            time.sleep(0.0005)
        return super().verify(t)

    def _spawn(self, work, status):
        r, w = os.pipe()
        try:
            return procs.start_target(self.argv(status), work, fds={3: r, 4: w})
        finally:
            os.close(r)
            os.close(w)


class Python(Workload):
    name, label, mem_mib = "python200M", "python3, 200 MiB of objects", 200

    def argv(self, status):
        return ["/usr/bin/python3", os.path.join(self.root, "bench/target_python.py"), status, "200"]


class Redis(Workload):
    """redis-server with 100,000 keys, filled by redis-cli --pipe, listening
    on loopback TCP (the workload asked for) or, as a second variant that
    shows what the socket kind changes, on a unix socket only. Each value
    carries a token made at start-up."""
    KEYS = 100000
    WORDS = ("page", "memory", "restore", "checkpoint", "kernel", "thread", "socket", "value")

    def __init__(self, root, bins, unix=False):
        super().__init__(root, bins)
        self.unix = unix
        self.name = "redis100k-unix" if unix else "redis100k"
        self.label = "redis-server, 100k keys, %s" % ("unix socket" if unix else "loopback TCP")

    def value(self, token, n):
        words = " ".join(self.WORDS[(n * k) % len(self.WORDS)] for k in range(1, 12))
        return "%s:%06d:%s" % (token, n, words)

    def start(self, work, serial):
        argv = ["/usr/bin/redis-server", "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--logfile", "", "--dir", work]
        if self.unix:
            where = os.path.join(work, "redis-%d.sock" % serial)
            argv += ["--port", "0", "--unixsocket", where, "--unixsocketperm", "700"]
        else:
            with socket.socket() as s:  # a free loopback port
                s.bind(("127.0.0.1", 0))
                where = s.getsockname()[1]
            argv += ["--port", str(where), "--bind", "127.0.0.1"]
        t = Target(procs.start_target(argv, work))
        t.addr, t.token = where, "%016x" % random.getrandbits(64)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self._cli(t, "PING") != "PONG":
            if t.proc.poll() is not None or time.monotonic() > deadline:
                procs.stop_target(t.proc)
                raise RuntimeError("redis-server did not answer PING")
            time.sleep(0.02)
        resp = "".join("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
                       for k, v in (("key:%d" % n, self.value(t.token, n)) for n in range(self.KEYS)))
        fill = subprocess.run(self._cli_argv(t) + ["--pipe"], input=resp.encode(), capture_output=True,
                              timeout=120)
        size = self._cli(t, "DBSIZE")
        if fill.returncode != 0 or size != str(self.KEYS):
            procs.stop_target(t.proc)
            raise RuntimeError("filling redis failed: %s, DBSIZE %s" % (fill.stdout.decode()[-200:], size))
        t.exe = procs.exe_of(t.pid)
        return t

    def before_dump(self, t):
        """The workload is an idle server: wait (1 s at most) until the
        connections of earlier redis-cli runs are closed on the server's side
        too (that happens asynchronously), leaving only the listener.
        forkpoint does not dump connected sockets."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                socks = sum(1 for fd in os.listdir("/proc/%d/fd" % t.pid)
                            if os.readlink("/proc/%d/fd/%s" % (t.pid, fd)).startswith("socket:"))
            except OSError:
                return
            if socks <= 1:
                return
            time.sleep(0.01)

    def _cli_argv(self, t):
        where = ["-s", t.addr] if self.unix else ["-h", "127.0.0.1", "-p", str(t.addr)]
        return ["/usr/bin/redis-cli"] + where

    def _cli(self, t, *cmd):
        try:
            out = subprocess.run(self._cli_argv(t) + list(cmd), capture_output=True, text=True,
                                 timeout=VERIFY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    def verify(self, t):
        why = self.check_identity(t)
        if why:
            return False, why
        size = self._cli(t, "DBSIZE")
        if size != str(self.KEYS):
            return False, "DBSIZE is %s, expected %d" % (size, self.KEYS)
        n = random.randrange(self.KEYS)
        got = self._cli(t, "GET", "key:%d" % n)
        if got != self.value(t.token, n):
            return False, "key:%d is %r, expected %r" % (n, got, self.value(t.token, n))
        return True, "DBSIZE %s, key:%d ok" % (size, n)


def all_workloads(root, bins, quick):
    ws = [Heap(root, bins, 10), Heap(root, bins, 100)]
    if not quick:
        ws.append(Heap(root, bins, 1024))
    return ws + [Threads(root, bins), Bash(root, bins), Python(root, bins), Redis(root, bins),
                 Redis(root, bins, unix=True)]
