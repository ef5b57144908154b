"""Benchmark workload: a python3 process of MIB MiB resident, nearly all of it
ordinary objects (tuples of ints, str, float and small lists), speaking the
ct_* status-file protocol of tests/targets: "ready PID token=T ..." once
built, then on SIGUSR2 it recomputes a checksum over every object and
appends "verify N ok pid=P token=T" (or "verify N FAIL ..."). T is a random
value made at start-up: reading it back after a restore shows the process's
own state survived, not a fresh copy.

    python3 target_python.py STATUS [MIB]
"""
import os
import signal
import sys
import zlib

WORDS = ("alpha", "beta", "gamma", "delta", "page", "memory", "restore", "dump",
         "thread", "signal", "kernel", "image")
BATCH = 10000


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(mib):
    """Records until the process's resident size reaches mib MiB."""
    data = []
    while rss_bytes() < mib * 1024 * 1024:
        for i in range(len(data), len(data) + BATCH):
            word = WORDS[i % len(WORDS)]
            data.append((i, "record-%08d-%s-%s" % (i, word, WORDS[(i * 7) % len(WORDS)]),
                         i * 0.5, [i % 97, word]))
    return data


def checksum(data):
    crc = 0
    for i, text, half, small in data:
        crc = zlib.crc32(text.encode(), crc)
        if half != i * 0.5 or small[0] != i % 97:
            return -1
    return crc ^ len(data)


def main():
    status, mib = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    token = os.urandom(8).hex()
    data = build(mib)
    want = checksum(data)
    # Blocked and taken with sigwaitinfo: no window where a request is lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})

    def line(text):
        fd = os.open(status, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (text + "\n").encode())
        os.close(fd)

    line("ready %d token=%s records=%d rss=%d" % (os.getpid(), token, len(data), rss_bytes()))
    n = 0
    while True:
        signal.sigwaitinfo({signal.SIGUSR2})
        n += 1
        got = checksum(data)
        if got == want:
            line("verify %d ok pid=%d token=%s" % (n, os.getpid(), token))
        else:
            line("verify %d FAIL pid=%d: checksum %d, expected %d" % (n, os.getpid(), got, want))


if __name__ == "__main__":
    main()
