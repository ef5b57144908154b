# Python multiprocessing with a shared Value, a Queue and a Lock (their
# memory and semaphores are mappings of deleted files in /dev/shm), for
# e2e/real_pymp.sh. Main and two workers; on SIGUSR2 main queues 1..10,
# the workers add them to the shared value under the lock, and main writes
# "value V pid=P" once the value has grown by 55 (or "FAIL ..." after 30 s).
# SIGTERM: the workers are told to stop and joined, then main exits.
import multiprocessing as mp
import os
import signal
import sys
import time


def worker(v, q, lock, done):
    while True:
        item = q.get()
        if item is None:
            return
        with lock:
            v.value += item
            done.value += 1


def main():
    status = open(sys.argv[1], 'a', buffering=1)
    v = mp.Value('q', 0, lock=False)
    done = mp.Value('q', 0, lock=False)
    q = mp.Queue()
    lock = mp.Lock()
    ps = [mp.Process(target=worker, args=(v, q, lock, done)) for _ in range(2)]
    for p in ps:
        p.start()
    requests = []
    signal.signal(signal.SIGUSR2, lambda s, f: requests.append('v'))
    signal.signal(signal.SIGTERM, lambda s, f: requests.append('q'))
    status.write('ready %d kids=%s\n' % (os.getpid(), ','.join(str(p.pid) for p in ps)))
    while True:
        if not requests:
            signal.pause()
            continue
        r = requests.pop(0)
        if r == 'q':
            for _ in ps:
                q.put(None)
            for p in ps:
                p.join()
            status.write('exit %d\n' % v.value)
            return 0
        before, want = v.value, done.value + 10
        for i in range(1, 11):
            q.put(i)
        deadline = time.monotonic() + 30
        while done.value < want and time.monotonic() < deadline:
            time.sleep(0.005)
        if done.value < want:
            status.write('FAIL only %d of 10 items taken pid=%d\n' % (10 - (want - done.value), os.getpid()))
        else:
            with lock:
                status.write('value %d from %d pid=%d\n' % (v.value, before, os.getpid()))


sys.exit(main())
