#!/usr/bin/env python3
"""Time from `forkpoint branch` to running.

A session runs bench_dirty (N MiB of data), snapshot s0 is taken, then
`forkpoint branch SESSION s0 --json` is timed RUNS times (each branch
stopped before the next), and once with -n 3. Reports medians of:

  wall      the command, as the caller waits for it
  ms        the branch's own report: from the call until its processes run
  restore   the restore inside the branch's new namespaces

Not run by the tests (speed is measured here only).

  bench/branch.py [--sizes 100,1024] [--runs 5] [--out FILE.md]

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
from incremental import FP, TARGET, fp, wait_line  # noqa: E402


def stop(env, names):
    helpers = [s["helper_pid"] for s in json.loads(fp("ps", "--json", env=env)[0]) if s["name"] in names]
    for n in names:
        fp("stop", "--kill", n, env=env)
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{h}") for h in helpers) and time.monotonic() < deadline:
        time.sleep(0.01)


def run_size(mib, runs):
    home = tempfile.mkdtemp(prefix="fp-bench-branch.")
    env = dict(os.environ, FORKPOINT_HOME=home)
    status = os.path.join(home, "status")
    name = f"m{mib}"
    res = {"mib": mib, "one": [], "three": []}
    try:
        fp("run", "--detach", "--name", name, "--", TARGET, status, f"--mib={mib}", env=env)
        wait_line(status, "ready")
        fp("snap", name, "s0", env=env)
        for _ in range(runs):
            out, wall = fp("branch", name, "s0", "--json", env=env)
            b = json.loads(out)[0]
            b["wall"] = wall
            res["one"].append(b)
            stop(env, [b["name"]])
        out, wall = fp("branch", name, "s0", "-n", "3", "--json", env=env)
        res["three"] = json.loads(out)
        res["three_wall"] = wall
        stop(env, [b["name"] for b in res["three"]])
    finally:
        subprocess.run([FP, "stop", "--kill", name], env=env, capture_output=True)
        time.sleep(0.5)
        shutil.rmtree(home, ignore_errors=True)
    return res


def med(v):
    return statistics.median(v) if v else float("nan")


def report(results, runs):
    lines = ["| target | branch wall (median) | to running, `ms` (median) [min-max] | restore in the branch (median) | -n 3: wall / each branch's `ms` |",
             "|---|---|---|---|---|"]
    for r in results:
        ms = [b["ms"] for b in r["one"]]
        lines.append(f"| {r['mib']} MiB | {med([b['wall'] for b in r['one']]):.0f} ms | {med(ms):.0f} ms "
                     f"[{min(ms):.0f}-{max(ms):.0f}] | {med([b['restore_ms'] for b in r['one']]):.0f} ms | "
                     f"{r['three_wall']:.0f} ms / " + ", ".join(f"{b['ms']:.0f}" for b in r["three"]) + " ms |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    if os.geteuid():
        raise SystemExit("needs root")
    results = [run_size(int(s), a.runs) for s in a.sizes.split(",")]
    load = os.getloadavg()[0]
    head = (f"forkpoint branch, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
            f"load {load:.1f}, kernel {os.uname().release}; {a.runs} runs per size\n\n")
    text = report(results, a.runs)
    print(head + text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(head + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
