#!/usr/bin/env python3
"""A seeded random walk over snapshots, rollbacks and branches (issue 12).

The target (tests/targets/ct_walk) is a deterministic state machine: the test
moves one live process a step (it reports its new state digest), then makes
one operation: snap, rollback to a random earlier snapshot, branch, snap
inside a branch, rm of a middle snapshot (and stop of a branch when there
are many). After each operation every live process checks its memory,
mappings, threads, child, fds and workspace files against its own
bookkeeping, and that its state digest is the one this walk expects (the
digest recorded when the snapshot it came from was taken).

Environment: FP, T, WORK (tests/lib.sh), FP_WALK_OPS (default 300),
FP_WALK_SEED (default 1), FP_WALK_MAX_BRANCHES (live branches, default 3),
FP_WALK_HOT (default 1: every other snapshot is taken with --hot); every
fourth snapshot is taken with --early-reply.
"""
import json
import os
import random
import subprocess
import sys
import time

FP = os.environ["FP"]
T = os.environ["T"]
WORK = os.environ["WORK"]
OPS = int(os.environ.get("FP_WALK_OPS", "300"))
SEED = int(os.environ.get("FP_WALK_SEED", "1"))
MAX_BRANCHES = int(os.environ.get("FP_WALK_MAX_BRANCHES", "3"))
HOT = os.environ.get("FP_WALK_HOT", "1") == "1"
STATUS = os.path.join(WORK, "walk.status")
REQ = os.path.join(WORK, "walk.req")
DIR = os.path.join(WORK, "project")

rng = random.Random(SEED)
helpers = set()
log = []


def fail(msg):
    print("FAIL: op %d: %s" % (len(log), msg), file=sys.stderr)
    print("last operations:\n  " + "\n  ".join(log[-15:]), file=sys.stderr)
    sys.exit(1)


def fp(*args, check=True):
    r = subprocess.run([FP, *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        fail("forkpoint %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def ps():
    return {s["name"]: s for s in json.loads(fp("ps", "--json").stdout)}


class Status:
    """Reads the shared status file incrementally."""

    def __init__(self):
        self.off = 0
        self.buf = ""
        self.nonce = 0

    def wait_nonce(self, nonce, deadline):
        key = "nonce=%d " % nonce
        while True:
            with open(STATUS) as f:
                f.seek(self.off)
                chunk = f.read()
                self.off = f.tell()
            self.buf += chunk
            lines = self.buf.split("\n")
            self.buf = lines[-1]
            for line in lines[:-1]:
                if key in line:
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)

    def request(self, pid, words):
        self.nonce += 1
        tmp = REQ + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %s\n" % (self.nonce, words))
        os.rename(tmp, REQ)
        try:
            os.kill(pid, 12)  # SIGUSR2
        except OSError as e:
            return "cannot signal %d: %s" % (pid, e)
        line = self.wait_nonce(self.nonce, time.monotonic() + 30)
        return line if line is not None else "no answer from pid %d" % pid


st = Status()
live = {}    # session -> expected digest
snaps = {}   # session -> [(snap, digest)] oldest first (those not removed)
pids = {}    # session -> target pid (outside)
counter = [0]


def refresh(name):
    s = ps().get(name)
    if not s:
        fail("session %s is gone: %s" % (name, fp("ps").stdout))
    pids[name] = s["target_pid"]
    helpers.add(s["helper_pid"])


def check(name, digest_key="digest"):
    line = st.request(pids[name], "verify %s" % live[name])
    if " ok " not in line:
        fail("%s (pid %d) expected state %s: %s" % (name, pids[name], live[name], line))


def advance(name):
    x = rng.getrandbits(63) | 1
    line = st.request(pids[name], "advance %x %s" % (x, live[name]))
    if " ok " not in line:
        fail("advance %s: %s" % (name, line))
    live[name] = line.rsplit("digest=", 1)[1].strip()


def new_snap(name):
    counter[0] += 1
    snap = "s%d" % counter[0]
    # every other snapshot hot: branches of those fork the tree's frozen
    # copy; of the others every other replies before its images are
    # written, and the next operation (rm, branch, restore) meets it
    # (the rng's sequence stays the walk's)
    flags = ["--hot"] if HOT and counter[0] % 2 == 0 else ["--early-reply"] if counter[0] % 4 == 1 else []
    fp("snap", name, snap, *flags)
    snaps.setdefault(name, []).append((snap, live[name]))
    return snap


def branches():
    return [n for n in live if n != "w"]


def op_snap():
    snap = new_snap("w")
    return "snap w %s" % snap


def op_snap_branch():
    b = branches()
    if not b:
        return op_snap()
    name = rng.choice(b)
    snap = new_snap(name)
    return "snap-in-branch %s %s" % (name, snap)


def op_rollback():
    cands = [n for n in live if snaps.get(n)]
    if not cands:
        return op_snap()
    name = rng.choice(cands)
    snap, digest = rng.choice(snaps[name])
    fp("restore", name, snap)
    live[name] = digest
    refresh(name)
    return "restore %s %s" % (name, snap)


def op_branch():
    if len(branches()) >= MAX_BRANCHES:
        name = rng.choice(branches())
        helper = ps()[name]["helper_pid"]
        fp("stop", "--kill", name)
        deadline = time.monotonic() + 20
        while os.path.exists("/proc/%d" % helper):
            if time.monotonic() > deadline:
                fail("stop %s: its helper %d did not end" % (name, helper))
            time.sleep(0.01)
        del live[name]
        return "stop %s" % name
    cands = [n for n in live if snaps.get(n)]
    if not cands:
        return op_snap()
    name = rng.choice(cands)
    snap, digest = rng.choice(snaps[name])
    out = json.loads(fp("branch", name, snap, "--json").stdout)
    b = out[0]["name"]
    live[b] = digest
    refresh(b)
    # a hot snapshot of the original must fork (its branches' own do not:
    # their copies are in another pid namespace)
    if name == "w" and out[0].get("hot_why"):
        fail("branch %s %s was not forked from its hot snapshot: %s" % (name, snap, out[0]["hot_why"]))
    return "branch %s %s -> %s (%.0f ms%s)" % (name, snap, b, out[0]["ms"], ", hot" if out[0]["hot"] else "")


def op_rm_middle():
    cands = [n for n in snaps if len(snaps[n]) >= 3]
    if not cands:
        return op_snap_branch()
    name = rng.choice(cands)
    i = rng.randrange(1, len(snaps[name]) - 1)
    snap, _ = snaps[name].pop(i)
    fp("rm", name, snap)
    return "rm %s %s" % (name, snap)


OPERATIONS = [(op_snap, 25), (op_rollback, 20), (op_branch, 15), (op_snap_branch, 25), (op_rm_middle, 15)]


def main():
    os.makedirs(DIR, exist_ok=True)
    r = fp("run", "--detach", "--name", "w", "--workdir", DIR, "--", os.path.join(T, "ct_walk"), STATUS,
           "--dir=" + DIR, "--req=" + REQ)
    deadline = time.monotonic() + 20
    digest = None
    while digest is None:
        if os.path.exists(STATUS):
            for line in open(STATUS):
                if line.startswith("info digest "):
                    digest = line.split()[2]
                if line.startswith("error"):
                    fail("target: " + line)
        if time.monotonic() > deadline:
            fail("the target did not start")
        time.sleep(0.01)
    with open(STATUS) as f:
        f.read()
        st.off = f.tell()
    live["w"] = digest
    refresh("w")
    t0 = time.monotonic()
    funcs = [f for f, _ in OPERATIONS]
    weights = [w for _, w in OPERATIONS]
    for i in range(OPS):
        advance(rng.choice(sorted(live)))
        op = rng.choices(funcs, weights)[0]
        log.append("%d: %s" % (i, op()))
        for name in sorted(live):
            check(name)
    took = time.monotonic() - t0
    counts = {}
    for entry in log:
        verb = entry.split()[1]
        counts[verb] = counts.get(verb, 0) + 1
    counts["(hot branches)"] = sum(1 for entry in log if entry.endswith(", hot)"))
    print("walk: %d operations, seed %d, %.1f s: %s" % (OPS, SEED, took,
          ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    for name in sorted(live, reverse=True):
        fp("stop", "--kill", name)


try:
    main()
finally:
    for h in helpers:
        try:
            os.kill(h, 9)
        except OSError:
            pass
print("ok")
