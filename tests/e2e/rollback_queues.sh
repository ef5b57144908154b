# A rollback in place leaves pipes and sockets where they are, and with
# them what they hold; it must hold what SNAP recorded
# (helper/session/rollback_queues.c). A Python program holds a pipe and a
# socketpair. Each round: set what the pipe holds, snapshot, then change
# it (read the bytes out, or queue more; queue a datagram on the
# socketpair), and roll back. A changed queue makes the rollback a full
# restore (`restore --json` says why) that puts SNAP's bytes back; an
# unchanged one keeps the rollback in place. After each, the program reads
# its pipe and socket without blocking and must find exactly SNAP's bytes.
# It also listens on a unix and a TCP socket: a connection waiting to be
# accepted since SNAP makes it a full restore too, after which none waits;
# a snapshot with one waiting is refused. Status flags changed since SNAP
# (F_SETFL: O_NONBLOCK, O_APPEND) and close-on-exec (ioctl FIONCLEX) are
# set back in place.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/q.py" <<'PY'
import fcntl, os, signal, socket, sys
status, work = sys.argv[1:3]
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
r, w = os.pipe()
os.set_blocking(r, False)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
a.setblocking(False)
junk = bytearray(1 << 20)
lf = os.open(os.path.join(work, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
ul = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ul.bind("\0fp-rq-%d" % os.getpid())
ul.listen(4)
tl = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tl.bind(("127.0.0.1", 0))
tl.listen(4)
for l in (ul, tl):
    l.setblocking(False)
clients = []
def drain():
    try:
        return os.read(r, 1 << 16)
    except BlockingIOError:
        return b""
def act(*_):
    what = open(os.path.join(work, "act")).read().strip()
    if what.startswith("put:"):  # the pipe holds exactly this
        drain()
        os.write(w, what[4:].encode())
    elif what == "drain":
        drain()
    elif what == "more":
        os.write(w, b"zz")
    elif what == "sock":
        b.send(b"q")
    elif what == "uconn":
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(ul.getsockname())
        clients.append(c)
    elif what == "flags":  # F_SETFL since SNAP: set back in place
        os.set_blocking(w, False)
        os.set_blocking(a.fileno(), True)
        fcntl.fcntl(lf, fcntl.F_SETFL, fcntl.fcntl(lf, fcntl.F_GETFL) & ~os.O_APPEND)
    elif what == "cloexec":  # alone: ioctl(FIONCLEX), not fcntl
        os.set_inheritable(lf, True)
    elif what == "memory":
        junk[::4096] = b"m" * len(junk[::4096])
    say("did " + what)
def check(*_):
    want = open(os.path.join(work, "want")).read().strip().encode()
    got = drain()
    if got:
        os.write(w, got)  # left as it was
    try:
        sk = a.recv(16)
    except BlockingIOError:
        sk = None
    bad = []
    if got != want:
        bad.append("pipe holds %r, not %r" % (got, want))
    if sk is not None:
        bad.append("socket holds %r" % sk)
    if not os.get_blocking(w) or os.get_blocking(a.fileno()) or not fcntl.fcntl(lf, fcntl.F_GETFL) & os.O_APPEND:
        bad.append("the pipe's write end, the socket or the file has other status flags than SNAP's")
    if os.get_inheritable(lf):
        bad.append("the file lost its close-on-exec flag")
    for name, l in (("unix", ul), ("tcp", tl)):
        try:
            l.accept()
            bad.append("a connection waits on the %s listener" % name)
        except BlockingIOError:
            pass
    say("check " + ("ok" if not bad else "FAIL " + "; ".join(bad)))
signal.signal(signal.SIGUSR1, act)
signal.signal(signal.SIGUSR2, check)
say("ready %d %d" % (os.getpid(), tl.getsockname()[1]))
while True:
    signal.pause()
PY
"$FP" run --detach --name q -- python3 "$WORK/q.py" "$st" "$WORK" >/dev/null || fail "run"
track_pid "$(session_field q helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"

act() { # ACTION
	local pid
	if [[ $1 == tconn ]]; then # a client of its own (an established TCP fd would refuse the save of a full restore)
		python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' \
			"$(grep '^ready ' "$st" | tail -n 1 | cut -d' ' -f3)" || fail "cannot connect to the TCP listener"
		return
	fi
	pid=$(session_field q target_pid)
	echo "$1" >"$WORK/act"
	ask "$pid" USR1 "$st" 'did ' || fail "$1: the target did not act"
}
check() { # WANT: the pipe must hold WANT, the socket nothing
	local pid line
	echo "$1" >"$WORK/want"
	pid=$(session_field q target_pid)
	track_pid "$pid"
	ask "$pid" USR2 "$st" 'check ' || fail "no check answer"
	line=$(grep '^check ' "$st" | tail -n 1)
	[[ $line == "check ok" ]] || fail "$2: $line ($(cat "$WORK/r.json" 2>/dev/null))"
}
# round NAME SNAP_HOLDS CHANGE IN_PLACE
i=0
round() {
	i=$((i + 1))
	act "put:$2"
	"$FP" snap q "s$i" >/dev/null || fail "$1: snap s$i"
	act "$3"
	"$FP" restore q "s$i" --json >"$WORK/r.json" || fail "$1: restore s$i: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == "$4" ]] || fail "$1: in_place is not $4: $(cat "$WORK/r.json")"
	if [[ $4 == False ]]; then
		grep -q "queued\|queue goes back\|waiting to be accepted" "$WORK/r.json" ||
			fail "$1: the restore does not say which queue differs: $(cat "$WORK/r.json")"
	fi
	check "$2" "$1"
	echo "$1: ok, in place $4: $(json_field "$WORK/r.json" why 2>/dev/null)"
}
round "read since" abc drain False
round "written since" abc more False
round "unchanged" abc memory True
round "empty, written since" "" more False
round "datagram since" xy sock False
round "empty, unchanged" "" memory True
round "unix connection since" ab uconn False
round "TCP connection since" ab tconn False
round "listeners unchanged" ab memory True
round "status flags since" ab flags True
round "close-on-exec since" ab cloexec True
# a snapshot does not drop a waiting connection (only the save of
# processes that a full restore kills does): it refuses, and says why
act tconn
out=$("$FP" snap q refused 2>&1) && fail "a snapshot with a connection waiting to be accepted succeeded"
[[ $out == *"waiting to be accepted"* ]] || fail "the refused snapshot does not say why: $out"
act memory
"$FP" stop --kill q >/dev/null 2>&1
echo ok
