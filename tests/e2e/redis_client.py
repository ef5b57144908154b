# A redis client that starts its own redis-server as its child, so both are
# one process tree (tests/e2e/dump_tcp.sh): it keeps one connection open
# and, on each SIGUSR1, runs INCR fp-n and GET fp-key over it and writes
# "answer N <INCR reply> <GET reply>" to STATUS. "ready PID REDIS_PID" once
# connected and fp-key is set.
import os, signal, socket, subprocess, sys, time

port, status = int(sys.argv[1]), sys.argv[2]
st = open(status, "a", buffering=1)
r = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 20
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        if time.monotonic() > deadline:
            st.write("error redis did not start\n")
            sys.exit(2)
        time.sleep(0.05)

def cmd(*args):
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    s.sendall(req)
    buf = b""
    while True:
        buf += s.recv(4096)
        if buf.startswith(b"$") and not buf.startswith(b"$-1"):
            if buf.count(b"\r\n") >= 2:
                return buf.split(b"\r\n")[1].decode()
        elif buf.endswith(b"\r\n"):
            return buf.strip().decode()[1:]

cmd(b"SET", b"fp-key", b"fp-value")
n = 0
def answer(*a):
    global n
    n += 1
    st.write("answer %d %s %s\n" % (n, cmd(b"INCR", b"fp-n"), cmd(b"GET", b"fp-key")))
signal.signal(signal.SIGUSR1, answer)
st.write("ready %d %d\n" % (os.getpid(), r.pid))
while True:
    signal.pause()
