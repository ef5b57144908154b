#!/usr/bin/env python3
"""Time from `forkpoint branch` to running.

A session runs bench_dirty (N MiB of data); a cold snapshot s0 and a hot
one h0 (`snap --hot`: the process kept frozen in memory) are taken, then
`forkpoint branch SESSION SNAP --json` is timed RUNS times for each (each
branch stopped before the next), and once with -n 3. Reports medians of:

  wall      the command, as the caller waits for it
  ms        the branch's own report: from the call until its processes run
  restore   the restore inside the branch's new namespaces (for a hot
            branch: the restore of all but memory onto the fork)
  fork      hot only: the fork of the frozen copy in the original's helper

Not run by the tests (speed is measured here only).

With --tree the target is tests/targets/ct_explore (N MiB, three threads
and a forked child): a hot branch forks the root's frozen copy and restores
the child from its image.

  bench/branch.py [--sizes 100,1024] [--runs 3] [--tree] [--out FILE.md]

Needs root and a built tree (make all).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from incremental import FP, ROOT, TARGET, fp, wait_line  # noqa: E402
import tools  # noqa: E402


def stop(env, names):
    helpers = [s["helper_pid"] for s in json.loads(fp("ps", "--json", env=env)[0]) if s["name"] in names]
    for n in names:
        fp("stop", "--kill", n, env=env)
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{h}") for h in helpers) and time.monotonic() < deadline:
        time.sleep(0.01)


def wait_spares(home, name, snap, n, deadline_s=10):
    """A hot snapshot's spare branches are made in the background after
    `snap --hot` and after each branch; wait until n are ready (as a
    program that branches now and then finds them). Returns how many."""
    d = os.path.join(home, "sessions", name)
    end = time.monotonic() + deadline_s
    while True:
        ready = sum(os.path.exists(os.path.join(d, f"spare.{snap}.{k}.sock")) for k in range(1, 5))
        if ready >= n or time.monotonic() > end:
            return ready
        time.sleep(0.01)


EXPLORE = os.path.join(os.path.dirname(TARGET), "../tests/targets/ct_explore")


def run_size(mib, runs, tree=False, spares=True):
    home = tempfile.mkdtemp(prefix="fp-bench-branch.")
    env = dict(os.environ, FORKPOINT_HOME=home)
    status = os.path.join(home, "status")
    name = f"m{mib}"
    res = {"mib": mib}
    try:
        fp("run", "--detach", "--name", name, "--", EXPLORE if tree else TARGET, status, f"--mib={mib}", env=env)
        wait_line(status, "ready")
        fp("snap", name, "s0", env=env)
        fp("snap", name, "h0", "--hot", env=env)
        for kind, snap in (("cold", "s0"), ("hot", "h0")):
            one = []
            for _ in range(runs):
                if kind == "hot" and spares:
                    wait_spares(home, name, snap, 1)
                out, wall = fp("branch", name, snap, "--json", env=env)
                b = json.loads(out)[0]
                b["wall"] = wall
                one.append(b)
                stop(env, [b["name"]])
            if kind == "hot" and spares:
                wait_spares(home, name, snap, 1)
            out, wall = fp("branch", name, snap, "-n", "3", "--json", env=env)
            three = json.loads(out)
            stop(env, [b["name"] for b in three])
            res[kind] = {"one": one, "three": three, "three_wall": wall}
            if kind == "hot" and spares:
                # after a -n 3, three spares are made for the next one
                wait_spares(home, name, snap, 3)
                out, wall = fp("branch", name, snap, "-n", "3", "--json", env=env)
                again = json.loads(out)
                stop(env, [b["name"] for b in again])
                res[kind].update(again=again, again_wall=wall)
    finally:
        subprocess.run([FP, "stop", "--kill", name], env=env, capture_output=True)
        time.sleep(0.5)
        shutil.rmtree(home, ignore_errors=True)
    return res


def med(v):
    return statistics.median(v) if v else float("nan")


def report(results, runs):
    lines = ["| target | snapshot | branch wall (median) | to running, `ms` (median) [min-max] | restore in the branch (median) | -n 3: wall / each branch's `ms` |",
             "|---|---|---|---|---|---|"]
    for r in results:
        for kind in ("cold", "hot"):
            k = r[kind]
            ms = [b["ms"] for b in k["one"]]
            hot = sum(1 for b in k["one"] + k["three"] if b.get("hot"))
            spare = sum(1 for b in k["one"] + k["three"] if b.get("spare"))
            note = "" if kind == "cold" else f" ({hot}/{len(k['one']) + len(k['three'])} forked, {spare} by a spare)"
            why = {b["hot_why"] for b in k["one"] + k["three"] if b.get("hot_why")}
            if kind == "hot" and why:
                note += " why not: " + "; ".join(sorted(why))
            lines.append(f"| {r['mib']} MiB | {kind}{note} | {med([b['wall'] for b in k['one']]):.0f} ms | {med(ms):.0f} ms "
                         f"[{min(ms):.0f}-{max(ms):.0f}] | {med([b['restore_ms'] for b in k['one']]):.0f} ms"
                         + (f" + fork {med([b.get('fork_ms', 0) for b in k['one']]):.0f} ms" if kind == "hot" else "") + " | "
                         f"{k['three_wall']:.0f} ms / " + ", ".join(f"{b['ms']:.0f}" for b in k["three"]) + " ms"
                         + (f"; with 3 spares: {k['again_wall']:.0f} ms / " + ", ".join(f"{b['ms']:.0f}" for b in k["again"])
                            + f" ms ({sum(1 for b in k['again'] if b.get('spare'))}/3 by a spare)" if "again" in k else "") + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tree", action="store_true")
    ap.add_argument("--no-warm", action="store_true", help="do not touch the free memory first (tools.warm_memory)")
    ap.add_argument("--out")
    a = ap.parse_args()
    if os.geteuid():
        raise SystemExit("needs root")
    warmed = "not warmed here (--no-warm)" if a.no_warm else tools.warm_memory(os.path.join(ROOT, "build/bench/warm_memory"))
    results = [run_size(int(s), a.runs, a.tree) for s in a.sizes.split(",")]
    load = os.getloadavg()[0]
    head = (f"forkpoint branch, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
            f"load {load:.1f}, kernel {os.uname().release}; {a.runs} runs per size"
            + (", target ct_explore (a process tree: 3 threads, a child)" if a.tree else "") + f"; {warmed}\n\n")
    text = report(results, a.runs)
    print(head + text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(head + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
