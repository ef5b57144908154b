#!/usr/bin/env python3
"""Where a session request's wall time goes, per request, from kernel
tracepoints (perf): the client's start, its wait for the helper, the
helper's work, the client's exit.

  bench/client_timeline.py -- COMMAND...   e.g. python3 bench/incremental.py
                                           --sizes 1024 --client cli,api

runs COMMAND under `perf record -a` (scheduler and system call tracepoints,
not samples: a few microseconds per event) and prints one line per request
that COMMAND's processes sent to a session helper they started:

  client       "cli" (a forkpoint process COMMAND started) or "api" (the
               request came from COMMAND's own process, the Python binding)
  len          the request's length ("snap sN" 7, "restore sN" 10)
  fork>conn    cli: from the bench's fork of the command to its connect()
  conn>accept  the helper's accept(): until then it was busy (with what it
               does after its previous reply) or not scheduled
  accept>reply the helper's work, to its send() of the answer
  reply>recv   the client scheduled again to read it
  recv>exit    cli: the command's JSON and exit
  exit>wait    cli: the bench's wait4() seeing it

Then the medians per client and length. Needs root and perf.
"""
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile

EVENTS = ["sched:sched_process_fork", "sched:sched_process_exit", "syscalls:sys_enter_connect",
          "syscalls:sys_enter_sendto", "syscalls:sys_enter_accept4", "syscalls:sys_exit_recvfrom",
          "syscalls:sys_exit_wait4"]
LINE = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)$")


def record(cmd, d):
    """COMMAND's pid (its process tree is what is looked at) and perf's events."""
    data, pidfile = os.path.join(d, "perf.data"), os.path.join(d, "pid")
    ev = sum((["-e", e] for e in EVENTS), [])
    wrap = ["sh", "-c", 'echo $$ > "$0"; exec "$@"', pidfile, *cmd]
    rc = subprocess.run(["perf", "record", "-q", "-o", data, *ev, "-a", "--", *wrap]).returncode
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                         capture_output=True, text=True).stdout
    with open(pidfile) as f:
        return rc, int(f.read()), out


def parse(text):
    ev = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            comm, _pid, tid, t, name, rest = m.groups()
            ev.append((float(t) * 1000, comm, int(tid), name.split(":")[1], rest))
    return ev


def requests(ev, root):
    """One dict per request from root's process tree to a helper in that tree."""
    forks, parent = {}, {}
    for t, _c, tid, name, rest in ev:
        m = name == "sched_process_fork" and re.search(r"pid=(\d+) .*child_pid=(\d+)", rest)
        if m:
            forks[int(m.group(2))] = t
            parent[int(m.group(2))] = int(m.group(1))

    def under(tid):
        while tid in parent and tid != root:
            tid = parent[tid]
        return tid == root

    by = collections.defaultdict(list)
    for e in ev:
        by[e[2]].append(e)

    def first(tid, name, after):
        return next((e[0] for e in by[tid] if e[3] == name and e[0] >= after), None)

    out = []
    for t, _c, tid, name, rest in ev:
        if name != "sys_enter_connect" or not under(tid):
            continue
        acc = next((e for e in ev if e[3] == "sys_enter_accept4" and e[0] >= t and under(e[2]) and e[2] != tid), None)
        send = first(tid, "sys_enter_sendto", t)
        if not acc or send is None or acc[0] - t > 10000:
            continue
        m = next(re.search(r"len: (0x[0-9a-f]+)", e[4]) for e in by[tid] if e[3] == "sys_enter_sendto" and e[0] >= t)
        reply = first(acc[2], "sys_enter_sendto", acc[0])
        recv = first(tid, "sys_exit_recvfrom", reply or t)
        r = {"client": "api" if tid == root else "cli", "len": int(m.group(1), 16), "conn>accept": acc[0] - t,
             "accept>reply": (reply or t) - acc[0], "reply>recv": (recv or t) - (reply or t)}
        if tid != root and tid in forks:
            exit_t = first(tid, "sched_process_exit", t)
            wait_t = first(parent[tid], "sys_exit_wait4", exit_t or t)
            r.update({"fork>conn": t - forks[tid], "recv>exit": (exit_t or t) - (recv or t),
                      "exit>wait": (wait_t or t) - (exit_t or t)})
        # a connect answered by another process of the tree (CRIU's own
        # sockets in a CRIU round) pairs events out of order: not a request
        if all(v >= 0 for k, v in r.items() if k not in ("client", "len")):
            out.append(r)
    return out


COLS = ["fork>conn", "conn>accept", "accept>reply", "reply>recv", "recv>exit", "exit>wait"]


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory(prefix="fp-timeline.") as d:
        rc, root, text = record(sys.argv[2:], d)
    rows = requests(parse(text), root)
    print("client len " + " ".join(f"{c:>12s}" for c in COLS))
    for r in rows:
        print(f"{r['client']:6s} {r['len']:3d} " + " ".join(f"{r[c]:12.2f}" if c in r else " " * 12 for c in COLS))
    print("medians (ms):")
    for key in sorted({(r["client"], r["len"]) for r in rows}):
        sel = [r for r in rows if (r["client"], r["len"]) == key]
        print(f"{key[0]:6s} {key[1]:3d} " + " ".join(
            f"{statistics.median([r[c] for r in sel]):12.2f}" if c in sel[0] else " " * 12 for c in COLS)
            + f"   n={len(sel)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
