# The outside end of ct_tcp --peer (tests/e2e/dump_tcp.sh): listens on
# 127.0.0.1, answers every byte of stream 8 it receives with one byte of
# stream 9, and on SIGUSR1 sends 3000 more bytes of stream 9 on its own
# (the test does that while the other end is dumped). STATUS gets "port P",
# then "tx N" after each send, "bad" on a wrong byte, "closed ERR" if the
# connection ends.
import os, select, signal, socket, sys

st = open(sys.argv[1], "a", buffering=1)
def byte(stream, i):
    return (((i * 131) + (i >> 9) * 7 + stream * 29) ^ (i >> 17)) & 0xff
def gen(stream, start, n):
    return bytes(byte(stream, i) for i in range(start, start + n))

l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
st.write("port %d\n" % l.getsockname()[1])
c, _ = l.accept()
rfd, wfd = os.pipe()
signal.signal(signal.SIGUSR1, lambda *a: os.write(wfd, b"g"))
rx = tx = 0
try:
    while True:
        r, _, _ = select.select([c, rfd], [], [])
        out = 0
        if rfd in r:
            os.read(rfd, 1)
            out += 3000
        if c in r:
            d = c.recv(65536)
            if not d:
                st.write("closed EOF\n")
                break
            if d != gen(8, rx, len(d)):
                st.write("bad\n")
            rx += len(d)
            out += len(d)
        if out:
            c.sendall(gen(9, tx, out))
            tx += out
            st.write("tx %d\n" % tx)
except OSError as e:
    st.write("closed %s\n" % e)
