#!/usr/bin/env python3
"""Exploration steps on a session: incremental snapshots and rollbacks.

A session runs bench_dirty (N MiB of data; each step writes P% of its
pages at random). For each size it measures, per step:

  snap pause   the processes' stop (snap --json pause_ms)
  snap wall    the `forkpoint snap` command, as the caller waits for it
  disk         bytes of the new snapshot's directory (its own files only)
  rollback     `forkpoint restore SESSION SNAP` as the caller waits for it,
               with its save (save_ms) and restore (restore_ms) parts

Medians over the runs. Not run by the tests (speed is measured here only).

  bench/incremental.py [--sizes 100,1024] [--pct 1] [--steps 10]
                       [--rollbacks 3] [--out FILE.md]

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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FP = os.path.join(ROOT, "build/bin/forkpoint")
TARGET = os.path.join(ROOT, "build/bench/bench_dirty")


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


def session_pid(env, name):
    out, _ = fp("ps", "--json", env=env)
    return [s["target_pid"] for s in json.loads(out) if s["name"] == name][0]


def run_size(mib, pct, steps, rollbacks):
    home = tempfile.mkdtemp(prefix="fp-bench-incr.")
    env = dict(os.environ, FORKPOINT_HOME=home)
    status = os.path.join(home, "status")
    name = f"b{mib}"
    res = {"mib": mib, "pct": pct, "snaps": [], "rollbacks": [], "after_rollback": []}
    try:
        fp("run", "--detach", "--name", name, "--", TARGET, status, f"--mib={mib}", f"--pct={pct}", env=env)
        wait_line(status, "ready")
        snapdir = os.path.join(home, "sessions", name, "snapshots")
        n = 0
        at = {}  # the target's step counter in each snapshot

        def step():
            nonlocal n
            n += 1
            off = os.path.getsize(status)
            os.kill(session_pid(env, name), signal.SIGUSR1)
            wait_line(status, f"step {n}\n", off)

        def snap(label):
            at[label] = n
            out, wall = fp("snap", name, label, "--json", env=env)
            d = json.loads(out)
            d["wall_ms"] = wall
            d["disk"] = dir_bytes(os.path.join(snapdir, label))
            return d

        res["first"] = snap("s0")
        for i in range(1, steps + 1):
            step()
            res["snaps"].append(snap(f"s{i}"))
        last = f"s{steps}"
        for j in range(rollbacks):
            step()
            out, wall = fp("restore", name, last, "--json", env=env)
            d = json.loads(out)
            d["wall_ms"] = wall
            res["rollbacks"].append(d)
            n = at[last]
            # tracking starts over after a restore (new processes): the
            # next snapshot is full, the one after incremental again
            step()
            res["after_rollback"].append(snap(f"r{j}a"))
            step()
            last = f"r{j}b"
            res["after_rollback"].append(snap(last))
    finally:
        # also when a step failed: no session is left behind
        subprocess.run([FP, "stop", "--kill", name], env=env, capture_output=True)
        time.sleep(0.5)
        shutil.rmtree(home, ignore_errors=True)
    return res


def med(v):
    return statistics.median(v) if v else float("nan")


def report(results):
    lines = ["| per step | " + " | ".join(f"{r['mib']} MiB, {r['pct']}%" for r in results) + " |",
             "|---|" + "---|" * len(results)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in results) + " |")

    row("first snap (full): pause / wall / disk",
        lambda r: f"{r['first']['pause_ms']:.1f} ms / {r['first']['wall_ms']:.0f} ms / {r['first']['disk'] / 2**20:.1f} MiB")
    row("incremental snap pause (median)", lambda r: f"{med([s['pause_ms'] for s in r['snaps']]):.2f} ms")
    row("incremental snap wall (median)", lambda r: f"{med([s['wall_ms'] for s in r['snaps']]):.1f} ms")
    row("disk per incremental snapshot (median)", lambda r: f"{med([s['disk'] for s in r['snaps']]) / 2**20:.2f} MiB")
    row("pages written per snapshot (median)", lambda r: f"{med([s['pages'] for s in r['snaps']]):.0f}")
    row("all incremental", lambda r: str(all(not s["full"] for s in r["snaps"])))
    row("rollback wall (median)", lambda r: f"{med([x['wall_ms'] for x in r['rollbacks']]):.0f} ms")
    row("  its save / restore (median)",
        lambda r: f"{med([x['save_ms'] for x in r['rollbacks']]):.0f} / {med([x['restore_ms'] for x in r['rollbacks']]):.0f} ms")
    row("first snap after a rollback (full): wall",
        lambda r: f"{med([s['wall_ms'] for s in r['after_rollback'][0::2]]):.0f} ms")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--pct", type=float, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rollbacks", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    if os.geteuid():
        raise SystemExit("needs root")
    for p in (FP, TARGET):
        if not os.access(p, os.X_OK):
            raise SystemExit(f"{p} missing: make all {os.path.relpath(TARGET, ROOT)}")
    results = [run_size(int(s), a.pct, a.steps, a.rollbacks) for s in a.sizes.split(",")]
    text = report(results)
    head = (f"forkpoint incremental snapshots, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} CPUs, kernel {os.uname().release}; {a.steps} steps, {a.rollbacks} rollbacks per size\n\n")
    print(head + text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(head + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
