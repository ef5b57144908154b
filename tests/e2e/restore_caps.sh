# A restored thread must not come back with more privilege than it had:
# a Python program (root) drops a capability from its bounding set, drops
# CAP_SYS_ADMIN, sets inheritable and ambient capabilities and securebits
# (KEEP_CAPS), then a snapshot is taken; a change that a rollback in place
# cannot take back (its thread name) makes the restore a full one, by the
# native restorer, which builds a new process as root with every
# capability. After it the program must report SNAP's capability sets and
# securebits (restore/rst_caps.c); before, it came back with all of them.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/caps.py" <<'PY'
import ctypes, os, signal, sys
status = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
class hdr(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class data(ctypes.Structure):
    _fields_ = [("eff", ctypes.c_uint32), ("prm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]
def bit(c):
    return 1 << c
CAP_CHOWN, CAP_KILL, CAP_NET_RAW, CAP_SYS_ADMIN = 0, 5, 13, 21
assert libc.prctl(24, CAP_NET_RAW, 0, 0, 0) == 0                  # PR_CAPBSET_DROP
h = hdr(0x20080522, 0)
d = (data * 2)()
assert libc.capget(ctypes.byref(h), d) == 0
d[0].eff &= ~bit(CAP_SYS_ADMIN)
d[0].prm &= ~bit(CAP_SYS_ADMIN)
d[0].inh = bit(CAP_CHOWN) | bit(CAP_KILL)
assert libc.capset(ctypes.byref(h), d) == 0
assert libc.prctl(47, 2, CAP_KILL, 0, 0) == 0                     # PR_CAP_AMBIENT_RAISE
assert libc.prctl(28, 1 << 4, 0, 0, 0) == 0                       # SECBIT_KEEP_CAPS
def report(*_):
    caps = [l.strip() for l in open("/proc/self/status") if l.startswith("Cap")]
    say("caps %s sec=%x name=%s" % (" ".join(caps), libc.prctl(27, 0, 0, 0, 0),
                                     open("/proc/self/comm").read().strip()))
def rename(*_):
    libc.prctl(15, b"renamed", 0, 0, 0)
    say("renamed")
signal.signal(signal.SIGUSR2, report)
signal.signal(signal.SIGUSR1, rename)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
"$FP" run --detach --name caps -- python3 "$WORK/caps.py" "$st" >/dev/null || fail "run"
track_pid "$(session_field caps helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
report() {
	ask "$(session_field caps target_pid)" USR2 "$st" 'caps ' || fail "no report"
	grep '^caps ' "$st" | tail -n 1
}
before=$(report)
[[ $before == *"CapAmb:	0000000000000020"* && $before == *sec=10* ]] || fail "the target did not set its capabilities: $before"
"$FP" snap caps s1 >/dev/null || fail "snap"
ask "$(session_field caps target_pid)" USR1 "$st" 'renamed' || fail "no rename"
"$FP" restore caps s1 --json >"$WORK/r.json" || fail "restore: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == False ]] || fail "the restore was in place: $(cat "$WORK/r.json")"
after=$(report)
[[ $after == "$before" ]] || fail "after the full restore: $after; SNAP: $before"
echo "restored: $after"
"$FP" stop --kill caps >/dev/null 2>&1
echo ok
