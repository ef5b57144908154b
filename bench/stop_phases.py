#!/usr/bin/env python3
"""Where an incremental snap's stop goes, snap by snap.

  bench/stop_phases.py cli|api [STEPS]

A session runs build/bench/bench_dirty (MIB=1024 MiB, 1% written per step);
after each step it is snapped from the command line (cli) or through the
Python binding (api), and each snapshot's dump.log gives the pause, the
stop's phases and the warm-up's line. The median of the phases over the
snaps after the second ends the output. Environment: ROOT (the tree whose
build runs, default this one), MIB, GAP (seconds between a step and its
snap), RT=1 (the session's helper and target under SCHED_FIFO 10 after the
first snap: the stop's own cost on a machine busy with other work; short
runs only), QUIET=1 (medians only), SHOWLOG=1 (every dump.log), KEEP=1
(its FORKPOINT_HOME is kept). Needs root. Not run by the tests.
"""
import os, sys, time, signal, subprocess, tempfile, shutil, re, json
ROOT = os.environ.get("ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FP = os.path.join(ROOT, "build/bin/forkpoint")
TARGET = os.path.join(ROOT, "build/bench/bench_dirty")
mode = sys.argv[1] if len(sys.argv) > 1 else "api"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 9
mib = int(os.environ.get("MIB", "1024"))
gap = float(os.environ.get("GAP", "0"))  # seconds between step and snap
home = tempfile.mkdtemp(prefix="fp-stop-phases.")
env = dict(os.environ, FORKPOINT_HOME=home)
status = os.path.join(home, "status")
name = "sp"
def fp(*a):
    r = subprocess.run([FP, *a], env=env, capture_output=True, text=True)
    if r.returncode: raise SystemExit(r.stderr)
    return r.stdout
def wait_line(prefix, after=0):
    dl = time.monotonic() + 600
    while time.monotonic() < dl:
        try:
            with open(status) as f:
                f.seek(after)
                for l in f:
                    if l.startswith(prefix): return l
        except FileNotFoundError: pass
        time.sleep(0.005)
    raise SystemExit("timeout")
session = None
ALL = []
try:
    fp("run", "--detach", "--name", name, "--", TARGET, status, f"--mib={mib}", "--pct=1")
    wait_line("ready")
    pid = int(open(status).read().split()[1])
    if mode == "api":
        os.environ["FORKPOINT_HOME"] = home
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import forkpoint
        session = forkpoint.Session.open(name)
    snapdir = os.path.join(home, "sessions", name, "snapshots")
    n = 0
    def snap(label):
        t0 = time.perf_counter()
        if session:
            r = session.snap(label); pause = r.pause_ms; ph = r.phases
        else:
            d = json.loads(fp("snap", name, label, "--json")); pause = d["pause_ms"]; ph = d.get("phases_ms")
        wall = (time.perf_counter() - t0) * 1000
        log = open(os.path.join(snapdir, label, "dump.log")).read()
        phs = dict(re.findall(r"(\w+) ([\d.]+)", log.split("phases (ms): ")[-1].splitlines()[0])) if "phases (ms)" in log else {}
        warm = re.search(r"warmed before the stop: (.*)", log)
        keys = ["prepare", "seize", "cores", "mm", "uninject", "vmas", "pagemap", "dirty_scan", "dirty_read", "files"]
        if label != "s0" and label != "s1": ALL.append(dict(phs, pause=pause))
        if os.environ.get("QUIET"): return
        print(f"{label}: pause {float(pause):.2f} wall {wall:.1f} | " + " ".join(f"{k} {phs.get(k,'-')}" for k in keys))
        if warm: print("    warm:", warm.group(1))
        if os.environ.get("SHOWLOG"): print(log)
    snap("s0")
    if os.environ.get("RT"):
        helper = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        for p_ in (helper, pid):
            subprocess.run(["chrt", "-f", "-a", "-p", "10", str(p_)], check=True)
    for i in range(1, steps + 1):
        n += 1
        off = os.path.getsize(status)
        os.kill(pid, signal.SIGUSR1)
        wait_line(f"step {n}\n", off)
        if gap: time.sleep(gap)
        snap(f"s{i}")
    import statistics
    med = lambda k: statistics.median(float(d.get(k, 0)) for d in ALL)
    print("MEDIAN", mode, os.environ.get("FP_DUMP_NO_WORKER", ""), " ".join(f"{k} {med(k):.2f}" for k in ["pause", "cores", "uninject", "pagemap", "dirty_read", "files"]))
finally:
    if session: session.close()
    subprocess.run([FP, "stop", "--kill", name], env=env, capture_output=True)
    time.sleep(0.3)
    if not os.environ.get("KEEP"): shutil.rmtree(home, ignore_errors=True)
    else: print(home)
