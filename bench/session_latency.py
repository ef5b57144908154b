"""Shell-session latencies through the Python binding (python/forkpoint,
cffi over libforkpoint.so) in one long-lived interpreter: what an agent
driving a session from Python pays per call. Same rounds and output as
bench/session_latency.c ("step median_ms p90_ms" lines). Measures, never
asserts.

    python3 bench/session_latency.py [RUNS]"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import forkpoint  # noqa: E402


def report(step, v):
    v = sorted(v)
    p90 = max(int(len(v) * 0.9) - 1, 0)
    print(f"{step} {v[(len(v) - 1) // 2]:.2f} {v[p90]:.2f}")


def main():
    n = max(int(sys.argv[1]) if len(sys.argv) > 1 else 30, 1)
    steps = {k: [] for k in ("exec_true", "snap", "restore", "snap_restore", "exec_after_restore")}
    ms = lambda t0: (time.perf_counter() - t0) * 1e3  # noqa: E731
    with forkpoint.Session.create(shell=True, name=f"plat{os.getpid()}") as s:
        try:
            s.exec("cd /tmp; export A=1")
            for i in range(n):
                t0 = time.perf_counter()
                assert s.exec("true").exit_code == 0
                steps["exec_true"].append(ms(t0))
                t1 = time.perf_counter()
                s.snap(f"s{i}")
                steps["snap"].append(ms(t1))
                t2 = time.perf_counter()
                s.restore(f"s{i}")
                steps["restore"].append(ms(t2))
                steps["snap_restore"].append(ms(t1))
                t3 = time.perf_counter()
                assert s.exec("true").exit_code == 0
                steps["exec_after_restore"].append(ms(t3))
                s.rm(f"s{i}")
        finally:
            s.cleanup()
    for k, v in steps.items():
        report(k, v)


main()
