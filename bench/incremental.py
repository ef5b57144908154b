#!/usr/bin/env python3
"""Exploration steps on a session: incremental snapshots and rollbacks.

A session runs bench_dirty (N MiB of data; each step writes P% of its
pages at random) or, with --python MIB, a python3 process of MIB MiB of
objects that replaces P% of them per step (bench/target_python_steps.py).
Each step draws fresh pages, also the step after a rollback, as a
search's next alternative would (--same-pages: the choice follows the
target's step counter, which a rollback restores, so every rollback reads
the pages the one before read; results before 2026-12-07 were made so).
For each size and percentage it measures, per step:

  snap pause   the processes' stop (snap --json pause_ms)
  snap wall    the `forkpoint snap` command, as the caller waits for it
  disk         bytes of the new snapshot's directory (its own files only)
  rollback     `forkpoint restore SESSION SNAP` as the caller waits for it
               (in place: the same processes, only what changed written
               back; restore_ms is the stop-to-resume time inside)

and, on the same target started alone, CRIU per step: `criu dump -R`
(wall, disk) and `criu restore -d` of that dump (wall), so that an
exploration step (snap + rollback) compares with CRIU's (dump -R +
restore) in the same run.

Medians over the runs. Not run by the tests (speed is measured here only).

  bench/incremental.py [--sizes 100,1024] [--pct 0.1,1,10] [--python 200]
                       [--steps 10] [--rollbacks 3] [--criu-rounds 3]
                       [--client cli,api] [--hot] [--same-pages]
                       [--think-ms MS] [--out FILE.md]

--think-ms waits MS ms after each step of the target before the next
snap or rollback, as an agent deciding what to try next does (a model's
answer takes far longer) and a search computing its next move may. The
session helper reads ahead, while it waits, SNAP's pages that a rollback
to the last snapshot will write back (helper/session/rollback_ahead.c);
with 0 (the default) the request follows the step at once (within the
bench's 5 ms polling of the target's status) and finds little of that
done. CRIU's dump and restore are measured without any wait: they cannot
use it.

--client says who takes the snapshots and rollbacks: `cli` runs the
`forkpoint snap`/`restore` commands (each wall time includes starting the
command and its exit: about 1 ms, fork to connect 0.7-0.9 ms and reply to
the bench's wait4 0.3 ms, traced with perf), `api` calls them through the
Python binding (python/forkpoint over libforkpoint.so) from this
long-lived process, as an agent driving its session does. `cli,api`
measures both on one session, taking turns operation by operation (a
column each). Measured one session after the other (as before), the
first session's rollback median was the higher in 7 of 8 runs on a shared
machine, cli,api and api,cli in turn (and in 2 of 4 with the same client
twice; bench/results/cliwall-20261206.md): the order and the load moved
it more than the client did. CRIU is run once per size and percentage.

"wall outside the helper's total" is a command's wall time less the
total_ms the helper measured for it: the client's own cost, and the wait
for the helper to finish what it does after its previous reply (a snap's
re-protection and preload of its pages) before it takes the request.

RT=1 in the environment puts the session's helper and target, and the
bench with the commands it starts, under SCHED_FIFO 10 after the first
snapshot (as bench/stop_phases.py does): on a shared machine the other
work then stays out of the measured steps (root; the kernel's real-time
throttling still leaves 5% of each second to the rest).

--hot takes every snapshot with `snap --hot` (the default --hot-limit 2
keeps the last two), so each rollback target, the latest snapshot, is hot:
the rollback reads SNAP's pages from its frozen copy, not the page stores.

The snapshot's phases (snap --json phases_ms: where its pause and wall
went) are reported as medians for each column.

Needs root and a built tree (make all build/bench/bench_dirty).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tools  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FP = os.path.join(ROOT, "build/bin/forkpoint")
TARGET = os.path.join(ROOT, "build/bench/bench_dirty")
WARM = os.path.join(ROOT, "build/bench/warm_memory")
PY_TARGET = os.path.join(ROOT, "bench/target_python_steps.py")


SAME_PAGES = []  # ["--same-pages"] with --same-pages
THINK = [0.0]  # --think-ms, in seconds


def target_cmd(kind, mib, pct, status):
    if kind == "python":
        return [sys.executable, PY_TARGET, status, str(mib), str(pct), *SAME_PAGES]
    return [TARGET, status, f"--mib={mib}", f"--pct={pct}", *SAME_PAGES]


def fp(*args, env):
    t0 = time.monotonic()
    r = subprocess.run([FP, *args], env=env, capture_output=True, text=True)
    wall = (time.monotonic() - t0) * 1000
    if r.returncode:
        raise SystemExit(f"forkpoint {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout, wall


def wait_line(path, prefix, after=0, timeout=120):
    """The first line starting with prefix past byte offset `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                f.seek(after)
                for line in f:
                    if line.startswith(prefix):
                        return line
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"no '{prefix.strip()}' in {path} within {timeout} s")


def dir_bytes(d):
    total = 0
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isfile(p) and not os.path.islink(p):
            total += os.stat(p).st_blocks * 512
    return total


def dirty_mib():
    """The machine's dirty page cache (/proc/meminfo Dirty), MiB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def session_pid(env, name):
    out, _ = fp("ps", "--json", env=env)
    return [s["target_pid"] for s in json.loads(out) if s["name"] == name][0]


def api_module(home):
    """The Python binding, with FORKPOINT_HOME set for it (the library reads
    it when it looks for a session)."""
    os.environ["FORKPOINT_HOME"] = home
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import forkpoint  # noqa: E402
    return forkpoint


def early_reply():
    """snap --early-reply (the reply before the images are written): with
    --early-reply, or FP_BENCH_EARLY_REPLY=1 in an --ab variant."""
    return os.environ.get("FP_BENCH_EARLY_REPLY") == "1"


def api_snap(session, label, hot=False):
    t0 = time.perf_counter()
    r = session.snap(label, hot=hot, early_reply=early_reply() and not hot)
    wall = (time.perf_counter() - t0) * 1000
    # the same keys as `forkpoint snap --json`
    return {"pause_ms": r.pause_ms, "pages": r.pages, "full": not r.incremental, "phases_ms": r.phases,
            "why_full": r.why_full, "total_ms": r.total_ms}, wall


def api_restore(session, label):
    t0 = time.perf_counter()
    m0 = time.clock_gettime(time.CLOCK_MONOTONIC) * 1000
    r = session.restore(label)
    wall = (time.perf_counter() - t0) * 1000
    d = {"in_place": r.in_place, "engine": r.engine, "phases_ms": r.info.get("phases", ""),
         "total_ms": r.total_ms, "steps": r.info.get("steps", "")}
    for k in ("restore_ms", "pages", "cpu_ms", "verified_bytes", "ahead_bytes", "files_bytes"):
        if r.info.get(k):
            d[k] = float(r.info[k])
    if r.info.get("pages_from"):
        d["pages_from"] = r.info["pages_from"]
    d["snap_after"] = r.info.get("snap_after", "")
    if r.info.get("at_ms"):  # the helper's clock when the request came in
        d["arrive_ms"] = float(r.info["at_ms"]) - m0
        # > 0: the helper was still busy with the request before (its work
        # after that reply) when this one was made
        d["busy_ms"] = max(0.0, float(r.info.get("idle_at_ms", 0)) - m0)
    return d, wall


def realtime(env, name):
    """RT=1: the session's helper and target (every thread), and this
    process with the commands it starts, under SCHED_FIFO 10, so that the
    other work of a shared machine does not come between them."""
    pid = session_pid(env, name)
    with open(f"/proc/{pid}/stat") as f:
        helper = int(f.read().rsplit(")", 1)[1].split()[1])
    for p in (helper, pid):
        subprocess.run(["chrt", "-f", "-a", "-p", "10", str(p)], check=True)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))


def run_size(kind, mib, pct, steps, rollbacks, clients=("cli",), hot=False):
    """One session; with two clients they take turns, operation by
    operation (snap i by clients[i % 2], rollback j and the snap after it by
    clients[j % 2]), so that both meet the same machine and helper state.
    Returns one result per client; the first (full) snapshot is the first
    client's, in each."""
    # each size from a clean page cache: no dirty data of the one before
    # (its writeback would pace this one's writing)
    os.sync()
    home = tempfile.mkdtemp(prefix="fp-bench-incr.")
    env = dict(os.environ, FORKPOINT_HOME=home)
    status = os.path.join(home, "status")
    name = f"b{mib}"
    out = {c: {"kind": kind, "mib": mib, "pct": pct, "client": c, "snaps": [], "rollbacks": [],
               "after_rollback": []} for c in clients}
    session = None
    try:
        fp("run", "--detach", "--name", name, "--", *target_cmd(kind, mib, pct, status), env=env)
        wait_line(status, "ready", timeout=600)
        if "api" in clients:
            session = api_module(home).Session.open(name)
        snapdir = os.path.join(home, "sessions", name, "snapshots")
        n = 0
        at = {}  # the target's step counter in each snapshot
        sized = []

        def step():
            nonlocal n
            n += 1
            off = os.path.getsize(status)
            os.kill(session_pid(env, name), signal.SIGUSR1)
            wait_line(status, f"step {n}\n", off)
            time.sleep(THINK[0])  # the caller deciding what comes next

        def snap(label, client):
            at[label] = n
            if client == "api":
                d, wall = api_snap(session, label, hot)
            else:
                flags = ["--hot"] if hot else ["--early-reply"] if early_reply() else []
                out_, wall = fp("snap", name, label, "--json", *flags, env=env)
                d = json.loads(out_)
            d["wall_ms"] = wall
            d["dirty_mib"] = dirty_mib()
            sized.append((d, label))  # the disk it takes, once written (an early reply comes before)
            return d

        first = snap("s0", clients[0])
        for r in out.values():
            r["first"] = first
        if os.environ.get("RT"):
            realtime(env, name)
        for i in range(1, steps + 1):
            step()
            c = clients[(i - 1) % len(clients)]
            out[c]["snaps"].append(snap(f"s{i}", c))
        last = f"s{steps}"
        for j in range(rollbacks):
            c = clients[j % len(clients)]
            step()
            if c == "api":
                d, wall = api_restore(session, last)
            else:
                out_, wall = fp("restore", name, last, "--json", env=env)
                d = json.loads(out_)
            d["wall_ms"] = wall
            out[c]["rollbacks"].append(d)
            n = at[last]
            # after a rollback in place the tracking goes on from it: the
            # next snapshot is incremental against the one rolled back to
            step()
            last = f"r{j}"
            out[c]["after_rollback"].append(snap(last, c))
        # an early reply comes before its snapshot is published
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(snapdir, last, "forkpoint.manifest")) and time.monotonic() < deadline:
            time.sleep(0.005)
        for d, label in sized:
            d["disk"] = dir_bytes(os.path.join(snapdir, label))
    finally:
        if os.environ.get("RT"):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if session:
            session.close()
        # also when a step failed: no session is left behind
        subprocess.run([FP, "stop", "--kill", name], env=env, capture_output=True)
        time.sleep(0.5)
        if os.environ.get("FP_BENCH_KEEP"):
            # the snapshots' dump.log files stay, to read the phases
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    return [out[c] for c in clients]


def criu_path():
    r = subprocess.run([FP, "doctor", "--criu-path"], capture_output=True, text=True)
    p = r.stdout.strip()
    return p if r.returncode == 0 and p and os.access(p, os.X_OK) else None


def run_criu(criu, kind, mib, pct, rounds):
    """CRIU on the same target alone: per round a step, `criu dump -R`,
    then the process killed and `criu restore -d` of that dump."""
    os.sync()  # as forkpoint's part: from a clean page cache
    work = tempfile.mkdtemp(prefix="fp-bench-criu.")
    status = os.path.join(work, "status")
    res = {"dumps": [], "restores": [], "disk": []}
    dn = open(os.devnull, "r+")
    proc = subprocess.Popen(target_cmd(kind, mib, pct, status), stdin=dn, stdout=dn, stderr=dn,
                            start_new_session=True)
    pid = proc.pid
    try:
        wait_line(status, "ready", timeout=600)
        for k in range(1, rounds + 1):
            off = os.path.getsize(status)
            os.kill(pid, signal.SIGUSR1)
            wait_line(status, f"step {k}\n", off)
            d = os.path.join(work, f"d{k}")
            os.mkdir(d)
            t0 = time.monotonic()
            r = subprocess.run(["timeout", "-s", "KILL", "600", criu, "dump", "-t", str(pid), "-D", d, "-R",
                                "-o", "dump.log"], capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"criu dump failed: {r.stderr.strip()} (log {d}/dump.log)")
            res["dumps"].append((time.monotonic() - t0) * 1000)
            res["disk"].append(dir_bytes(d))
            os.kill(pid, signal.SIGKILL)
            if k == 1:
                proc.wait()
            else:
                # not our child: its new parent reaps it, and the pid is
                # free only then
                deadline = time.monotonic() + 30
                while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                    time.sleep(0.002)
            t0 = time.monotonic()
            r = subprocess.run(["timeout", "-s", "KILL", "600", criu, "restore", "-D", d, "-d", "-o", "restore.log"],
                               capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"criu restore failed: {r.stderr.strip()} (log {d}/restore.log)")
            res["restores"].append((time.monotonic() - t0) * 1000)
            shutil.rmtree(os.path.join(work, f"d{k - 1}"), ignore_errors=True)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.3)
        shutil.rmtree(work, ignore_errors=True)
    return res


def words_med(lines):
    """'name ms name ms' lines: each name's values, in the order first seen."""
    per = {}
    for line in lines:
        words = (line or "").split()
        for name, ms in zip(words[::2], words[1::2]):
            per.setdefault(name, []).append(float(ms))
    return per


def med(v):
    return statistics.median(v) if v else float("nan")


def phases(snaps):
    """Median ms per phase over the snapshots, in the order first seen."""
    per = {}
    for s in snaps:
        words = (s.get("phases_ms") or "").split()
        for name, ms in zip(words[::2], words[1::2]):
            per.setdefault(name, []).append(float(ms))
    return per


def report(results):
    def label(r):
        v = f", {r['variant']}" if r.get("variant") else ""
        return f"{'python3 ' if r['kind'] == 'python' else ''}{r['mib']} MiB, {r['pct']}%, {r['client']}{v}"

    lines = ["| per step | " + " | ".join(label(r) for r in results) + " |",
             "|---|" + "---|" * len(results)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in results) + " |")

    row("first snap (full): pause / wall / disk",
        lambda r: f"{r['first']['pause_ms']:.1f} ms / {r['first']['wall_ms']:.0f} ms / {r['first']['disk'] / 2**20:.1f} MiB")
    row("incremental snap pause (median)", lambda r: f"{med([s['pause_ms'] for s in r['snaps']]):.2f} ms")
    row("incremental snap wall (median)", lambda r: f"{med([s['wall_ms'] for s in r['snaps']]):.1f} ms")
    # snapshots are new page cache: once the dirty part passes the kernel's
    # threshold (~1 GiB here) their writing is paced to the disk's writeback
    row("  snap wall, first 10 / last 10 snapshots (median); dirty page cache at the end",
        lambda r: f"{med([s['wall_ms'] for s in r['snaps'][:10]]):.1f} / {med([s['wall_ms'] for s in r['snaps'][-10:]]):.1f} ms; "
                  f"{r['snaps'][-1].get('dirty_mib', float('nan')):.0f} MiB")
    row("  snap wall outside the helper's total (median)",
        lambda r: f"{med([s['wall_ms'] - s['total_ms'] for s in r['snaps'] if 'total_ms' in s]):.1f} ms")
    row("disk per incremental snapshot (median)", lambda r: f"{med([s['disk'] for s in r['snaps']]) / 2**20:.2f} MiB")
    row("pages written per snapshot (median)", lambda r: f"{med([s['pages'] for s in r['snaps']]):.0f}")
    row("all incremental", lambda r: str(all(not s["full"] for s in r["snaps"])))
    row("rollbacks in place", lambda r: f"{sum(bool(x.get('in_place')) for x in r['rollbacks'])} of {len(r['rollbacks'])}")
    row("rollback wall (median)", lambda r: f"{med([x['wall_ms'] for x in r['rollbacks']]):.0f} ms")
    # the session's first rollback alone: the one an agent that goes back
    # once waits for (buffers made, stores mapped and filled for it)
    row("  first rollback of this column, wall", lambda r: f"{r['rollbacks'][0]['wall_ms']:.0f} ms" if r["rollbacks"] else "-")
    # what the caller waited for apart from the helper's own total_ms: the
    # client (a command's start and exit, or the binding's call), and the
    # helper finishing the work it does after its last reply
    row("  rollback wall outside the helper's total (median)",
        lambda r: f"{med([x['wall_ms'] - x['total_ms'] for x in r['rollbacks'] if 'total_ms' in x]):.1f} ms")
    row("  request to reply, in the helper (median)",
        lambda r: f"{med([x.get('total_ms', float('nan')) for x in r['rollbacks']]):.1f} ms")
    row("    of which the call to the request's handling (median)",
        lambda r: f"{med([x.get('arrive_ms', float('nan')) for x in r['rollbacks']]):.1f} ms")
    row("      of which the helper still busy with the request before (median)",
        lambda r: f"{med([x.get('busy_ms', float('nan')) for x in r['rollbacks']]):.1f} ms")
    row("      the snapshot before: its work after the reply (median ms)",
        lambda r: " ".join(f"{n} {med(v):.2f}" for n, v in words_med([x.get('snap_after', '') for x in r['rollbacks']]).items()))
    row("  stop to resume, in the helper (median)",
        lambda r: f"{med([x['restore_ms'] for x in r['rollbacks']]):.1f} ms")
    row("  pages written back (median)", lambda r: f"{med([x.get('pages', 0) for x in r['rollbacks']]):.0f}")
    # SNAP's pages: from its frozen copy (a hot snapshot) or the page stores
    row("  SNAP's pages from", lambda r: ", ".join(sorted({str(x.get('pages_from', '-')) for x in r['rollbacks']})))
    # read before the request (rollback_ahead.c) or at it, from the stores
    row("  of them read ahead / at the request (median)",
        lambda r: f"{med([x.get('ahead_bytes', 0) for x in r['rollbacks']]) / 2**20:.1f} / "
                  f"{med([x.get('files_bytes', 0) for x in r['rollbacks']]) / 2**20:.1f} MiB")
    # the helper's CPU time: what a rollback costs apart from waiting for
    # a CPU on a loaded machine; and where the median one spent its time
    row("  helper CPU (median)", lambda r: f"{med([x.get('cpu_ms', float('nan')) for x in r['rollbacks']]):.1f} ms")
    row("  bytes hashed to prove SNAP (median)",
        lambda r: f"{med([x.get('verified_bytes', 0) for x in r['rollbacks']]) / 2**20:.1f} MiB")

    def median_phases(r):
        rb = sorted(r["rollbacks"], key=lambda x: x.get("restore_ms", 0))
        return rb[len(rb) // 2].get("phases_ms", "n/a") if rb else "n/a"
    row("  phases of the median rollback (ms)", median_phases)

    def median_steps(r):
        per = {}
        for x in r["rollbacks"]:
            words = (x.get("steps") or "").split()
            one = {}
            for name, ms in zip(words[::2], words[1::2]):
                one[name] = one.get(name, 0.0) + float(ms)
            for name, ms in one.items():
                per.setdefault(name, []).append(ms)
        return " ".join(f"{n} {med(v):.2f}" for n, v in per.items()) or "n/a"
    # every step of the rollback end to end, request to reply (restore's
    # steps= reply line): median of each over the rollbacks
    row("  steps, request to reply (median ms each)", median_steps)
    row("snap after a rollback: incremental, wall",
        lambda r: f"{all(not s['full'] for s in r['after_rollback'])}, {med([s['wall_ms'] for s in r['after_rollback']]):.0f} ms")

    def step_fp(r):
        return med([s['wall_ms'] for s in r['snaps']]) + med([x['wall_ms'] for x in r['rollbacks']])

    def step_criu(r):
        c = r.get("criu")
        return med(c["dumps"]) + med(c["restores"]) if c and c["dumps"] else float("nan")

    row("CRIU dump -R wall / disk (median)",
        lambda r: f"{med(r['criu']['dumps']):.0f} ms / {med(r['criu']['disk']) / 2**20:.1f} MiB" if r.get("criu") else "n/a")
    row("CRIU restore -d wall (median)",
        lambda r: f"{med(r['criu']['restores']):.0f} ms" if r.get("criu") else "n/a")
    row("exploration step: snap + rollback wall", lambda r: f"{step_fp(r):.0f} ms")
    row("CRIU's step: dump -R + restore wall", lambda r: f"{step_criu(r):.0f} ms")
    row("CRIU / forkpoint", lambda r: f"{step_criu(r) / step_fp(r):.1f}x")
    names = []
    for r in results:
        for n in phases(r["snaps"]):
            if n not in names:
                names.append(n)
    for n in names:
        row(f"  snap phase {n} (median ms)",
            lambda r, n=n: f"{med(phases(r['snaps']).get(n, [])):.2f}" if n in phases(r["snaps"]) else "-")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--pct", default="1", help="percent of pages written per step, a list: 0.1,1,10")
    ap.add_argument("--python", type=int, default=0, metavar="MIB",
                    help="also a python3 process of MIB MiB of objects (0: none)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rollbacks", type=int, default=3)
    ap.add_argument("--criu-rounds", type=int, default=3)
    ap.add_argument("--client", default="cli", help="cli, api or cli,api: who calls snap and restore")
    ap.add_argument("--hot", action="store_true",
                    help="snap --hot (default --hot-limit 2): rollbacks read SNAP's pages from its frozen copy")
    ap.add_argument("--early-reply", action="store_true",
                    help="snap --early-reply: the reply once the processes run again, before the images are "
                         "written (FP_BENCH_EARLY_REPLY=1 in an --ab variant does the same for its column)")
    ap.add_argument("--ab", default="",
                    help="A/B: variants separated by ';', each a comma list of NAME=VALUE set in the "
                         "environment of its session (its helper); '' the environment as it is. "
                         "Each variant is a column, run one after the other: --ab ';FP_X=1'")
    ap.add_argument("--no-warm", action="store_true",
                    help="do not touch the free memory first (bench/warm_memory.c: a fresh VM's pages "
                         "cost a host fault each the first time; bench/run.sh warms once for all)")
    ap.add_argument("--same-pages", action="store_true",
                    help="the target's step after a rollback writes the same pages as the step after the "
                         "rollback before (its choice follows its step counter, which the rollback restores): "
                         "each rollback then reads the pages the last one read. By default each step draws "
                         "fresh pages, as a search's next alternative would; results before 2026-12-07 "
                         "were measured the --same-pages way")
    ap.add_argument("--think-ms", type=float, default=0.0,
                    help="wait MS ms after each step of the target before the next request (an agent deciding)")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.same_pages:
        SAME_PAGES.append("--same-pages")
    THINK[0] = a.think_ms / 1000
    if a.early_reply:
        os.environ["FP_BENCH_EARLY_REPLY"] = "1"
    if os.geteuid():
        raise SystemExit("needs root")
    for p in (FP, TARGET):
        if not os.access(p, os.X_OK):
            raise SystemExit(f"{p} missing: make all {os.path.relpath(TARGET, ROOT)}")
    criu = criu_path() if a.criu_rounds else None
    cells = [("dirty", int(size), float(p)) for size in a.sizes.split(",") if size for p in a.pct.split(",")]
    if a.python:
        cells += [("python", a.python, float(p)) for p in a.pct.split(",")]
    clients = [c for c in a.client.split(",") if c]
    if not clients or any(c not in ("cli", "api") for c in clients) or len(set(clients)) != len(clients):
        raise SystemExit(f"--client {a.client}: say cli, api, cli,api or api,cli")
    warmed = "not warmed here (--no-warm)" if a.no_warm else tools.warm_memory(WARM)
    results = []
    for kind, size, pct in cells:
        crit = run_criu(criu, kind, size, pct, a.criu_rounds) if criu else None
        for variant in (a.ab.split(";") if a.ab else [""]):
            kv = dict(x.split("=", 1) for x in variant.split(",") if x)
            saved = {k: os.environ.get(k) for k in kv}
            os.environ.update(kv)
            try:
                rs = run_size(kind, size, pct, a.steps, a.rollbacks, clients, a.hot)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            for r in rs:
                r["variant"] = variant if a.ab else ""
                if crit:
                    r["criu"] = crit
                results.append(r)
    text = report(results)
    head = (f"forkpoint incremental snapshots, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} CPUs, kernel {os.uname().release}, load average {os.getloadavg()[0]:.1f}; "
            f"{a.steps} steps, {a.rollbacks} rollbacks, {a.criu_rounds} CRIU rounds per size{', snap --hot' if a.hot else ''}; CRIU: {criu or 'none'}; "
            f"clients: {a.client}{', snap --early-reply' if a.early_reply else ''}; {'the same pages after each rollback (--same-pages)' if a.same_pages else 'fresh pages at every step'}; "
            f"{a.think_ms:g} ms between a step and the next request (--think-ms); {warmed}\n\n")
    print(head + text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(head + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
