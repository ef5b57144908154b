# A rollback in place leaves the file locks a process holds as they are, so
# they must be SNAP's (helper/session/rollback_locks.c): a lock taken since
# SNAP would stay held by a process that does not know it holds it, one
# released since SNAP would be missing while the process goes on as its
# holder. A Python program holds three files and takes or releases a POSIX,
# flock or OFD lock per command (SIGUSR1); it reports the locks the kernel
# says it holds (its fdinfo) on SIGUSR2. Each round: snapshot, change, roll
# back; a change makes the rollback a full restore that says why (and that
# takes SNAP's locks back), and after it the report must be SNAP's again.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/lk.py" <<'PY'
import fcntl, os, signal, struct, sys
status, work = sys.argv[1:3]
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
fds = {}
for name in ("a", "b", "c"):
    fds[name] = os.open(os.path.join(work, "file-" + name), os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fds[name], b"x" * 4096)
F_OFD_SETLK = 37
def ofd(kind):
    # struct flock: type, whence, start, len, pid (0 for OFD locks)
    fcntl.fcntl(fds["c"], F_OFD_SETLK, struct.pack("hhqqi4x", kind, 0, 100, 1, 0))
junk = bytearray(1 << 20)
kept = []
def act(*_):
    what = open(os.path.join(work, "act")).read().strip()
    if what == "flock":
        fcntl.flock(fds["a"], fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif what == "unflock":
        fcntl.flock(fds["a"], fcntl.LOCK_UN)
    elif what == "posix":
        fcntl.lockf(fds["b"], fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 5)
    elif what == "unposix":
        fcntl.lockf(fds["b"], fcntl.LOCK_UN, 10, 5)
    elif what == "ofd":
        ofd(fcntl.F_WRLCK)
    elif what == "memory":
        junk[::4096] = b"m" * len(junk[::4096])
    elif what == "many":  # past the count whose fdinfo is read one by one
        kept.extend(os.open("/dev/null", os.O_RDONLY) for _ in range(100))
    say("did " + what)
def locks(fd):
    out = []
    for line in open("/proc/self/fdinfo/%d" % fd):
        if line.startswith("lock:"):
            v = line.split()
            out.append("/".join(v[2:5] + v[7:9]))  # kind, mode, rw, start, end
    return ",".join(sorted(out))
def look(*_):
    say("look a[%s] b[%s] c[%s]" % (locks(fds["a"]), locks(fds["b"]), locks(fds["c"])))
signal.signal(signal.SIGUSR1, act)
signal.signal(signal.SIGUSR2, look)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
start() { # a session named $S
	rm -f "$st"
	"$FP" run --detach --name "$S" -- python3 "$WORK/lk.py" "$st" "$WORK" >/dev/null || fail "run $S"
	track_pid "$(session_field "$S" helper_pid)"
	wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
}
S=lk
start

why="lock"
# each kind taken since SNAP, and a flock released since SNAP
rounds() {
	local change
	sig_round $S "$why" memory True
	for change in posix flock ofd; do
		sig_round $S "$why" $change False
	done
	sig_act $S flock
	sig_round $S "$why" memory True
	sig_round $S "$why" unflock False
}
rounds
sig_act $S posix
sig_round $S "$why" memory True
sig_round $S "$why" unposix False
[[ $(sig_look $S) == *FLOCK* && $(sig_look $S) == *POSIX* ]] || fail "SNAP's flock and POSIX locks are not held: $(sig_look $S)"
# Past 64 fds, the fd iterator says which fds' files have locks (only
# those are read), or without it (a helper that loads no BPF) /proc/locks
# says first whether the process can hold a lock
sig_act $S unflock
sig_act $S unposix
sig_act $S many
rounds
"$FP" stop --kill lk >/dev/null 2>&1
S=lkn
FP_DUMP_VMFLAGS_SMAPS=1 start
sig_act $S many
rounds
"$FP" stop --kill $S >/dev/null 2>&1
echo ok
