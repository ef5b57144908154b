"""Exploration workload in python3 for bench/incremental.py: about MIB MiB
resident in ordinary objects (bench/target_python.py builds them), then on
each SIGUSR1 it replaces PCT percent of its records, chosen at random, with
new objects (the interpreter's allocator writes the pages they land on) and
appends "step N" to STATUS. The status-file protocol of bench_dirty.c:
"ready PID" once built.

    python3 target_python_steps.py STATUS [MIB (200)] [PCT (1)] [--same-pages]

Each step picks its records with a fresh seed (os.urandom), which a
rollback does not take back, so the step after a rollback changes other
records; --same-pages seeds from the step counter (restored by a
rollback), as bench_dirty.c --same-pages.
"""
import os
import random
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from target_python import WORDS, build  # noqa: E402


def main():
    status = sys.argv[1]
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    pct = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    same = "--same-pages" in sys.argv[4:]
    data = build(mib)
    # Blocked and taken with sigwaitinfo: no window where a request is lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})

    def line(text):
        fd = os.open(status, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (text + "\n").encode())
        os.close(fd)

    line("ready %d records=%d" % (os.getpid(), len(data)))
    n = 0
    per_step = max(1, int(len(data) * pct / 100))
    while True:
        signal.sigwaitinfo({signal.SIGUSR1})
        n += 1
        rng = random.Random(n if same else os.urandom(16))
        for _ in range(per_step):
            i = rng.randrange(len(data))
            word = WORDS[(i + n) % len(WORDS)]
            data[i] = (i, "record-%08d-%s-step%d" % (i, word, n), i * 0.5, [i % 97, word])
        line("step %d" % n)


if __name__ == "__main__":
    main()
