# A rollback in place leaves the kernel's attributes of a process as they
# are, so they must be SNAP's (helper/session/rollback_attrs.c): a umask,
# a signal handler's flags, the child-subreaper flag, an alternate signal
# stack and a parent-death signal (rollback_threadset.c) changed since SNAP
# are set back in place; a changed thread name, resource limit, nice value,
# group list, securebits, personality, oom_score_adj or a child's process
# group makes it a full restore that says why. A Python program changes one on each command
# (SIGUSR2) and reports them all; after each rollback they must be SNAP's.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/at.py" <<'PY'
import ctypes, os, resource, signal, sys
status, work = sys.argv[1:3]
libc = ctypes.CDLL(None, use_errno=True)
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
def name():
    return open("/proc/self/comm").read().strip()
class sigaction_t(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                ("restorer", ctypes.c_void_p)]
def sa_flags(sig):
    old = sigaction_t()
    assert libc.sigaction(sig, None, ctypes.byref(old)) == 0
    return old.flags & 0x10000000  # SA_RESTART
signal.signal(signal.SIGWINCH, lambda *_: None)
class stack_t(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]
def altstack():
    old = stack_t()
    assert libc.sigaltstack(None, ctypes.byref(old)) == 0
    return "%d/%d" % (old.flags, old.size)
kept = []
def pdeath():
    v = ctypes.c_int()
    assert libc.prctl(2, ctypes.byref(v), 0, 0, 0) == 0  # PR_GET_PDEATHSIG
    return v.value
def subreaper():
    v = ctypes.c_int()
    assert libc.prctl(37, ctypes.byref(v), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
    return v.value
def cmd(*_):
    w = open(os.path.join(work, "cmd")).read().strip()
    if w == "umask":
        os.umask(0o077)
    elif w == "name":
        libc.prctl(15, b"renamed", 0, 0, 0)  # PR_SET_NAME
    elif w == "limit":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
    elif w == "nice":
        os.nice(1)
    elif w == "groups":
        os.setgroups(os.getgroups() + [4242])
    elif w == "personality":
        libc.personality(0x0040000)  # ADDR_NO_RANDOMIZE
    elif w == "oom":
        open("/proc/self/oom_score_adj", "w").write("77")
    elif w == "plain":  # personality, oom_score_adj, subreaper: a new process's
        libc.personality(0)
        open("/proc/self/oom_score_adj", "w").write("0")
        assert libc.prctl(36, 0, 0, 0, 0) == 0
        assert libc.prctl(28, 0, 0, 0, 0) == 0
    elif w == "handler":  # the same signal caught, with SA_RESTART now
        signal.siginterrupt(signal.SIGWINCH, False)
    elif w == "securebits":
        assert libc.prctl(28, 1 << 4, 0, 0, 0) == 0  # PR_SET_SECUREBITS, SECBIT_KEEP_CAPS
    elif w == "subreaper":
        assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    elif w == "pdeath":
        assert libc.prctl(1, signal.SIGTERM, 0, 0, 0) == 0  # PR_SET_PDEATHSIG
    elif w == "altstack":  # in memory allocated since SNAP
        kept.append(ctypes.create_string_buffer(65536))
        new = stack_t(ctypes.cast(kept[-1], ctypes.c_void_p), 0, 65536)
        assert libc.sigaltstack(ctypes.byref(new), None) == 0
    m = os.umask(0)
    os.umask(m)
    pers = libc.personality(0xffffffff)
    oom = open("/proc/self/oom_score_adj").read().strip()
    say("%s umask=%o name=%s nofile=%d nice=%d groups=%s pers=%x oom=%s winch=%x alt=%s pdeath=%d sub=%d sec=%x" % (
        w, m, name(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], os.nice(0),
        ",".join(map(str, sorted(os.getgroups()))) or "-", pers, oom, sa_flags(signal.SIGWINCH), altstack(), pdeath(), subreaper(), libc.prctl(27, 0, 0, 0, 0)))
signal.signal(signal.SIGUSR2, cmd)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
"$FP" run --detach --name at -- python3 "$WORK/at.py" "$st" "$WORK" >/dev/null || fail "run"
track_pid "$(session_field at helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"

cmd() { # CMD: prints the attributes after it
	local pid
	pid=$(session_field at target_pid)
	track_pid "$pid"
	echo "$1" >"$WORK/cmd"
	ask "$pid" USR2 "$st" "$1 " || fail "no answer to $1"
	grep "^$1 " "$st" | tail -n 1 | cut -d' ' -f2-
}

snap_attrs=$(cmd look)
i=0
for change in umask handler subreaper altstack pdeath name limit nice groups securebits personality oom; do
	i=$((i + 1))
	"$FP" snap at "s$i" >/dev/null || fail "snap s$i"
	after=$(cmd "$change")
	[[ $after != "$snap_attrs" ]] || fail "$change changed nothing: $after"
	"$FP" restore at "s$i" --json >"$WORK/r.json" || fail "restore s$i: $(cat "$WORK/r.json")"
	want=False
	[[ $change == umask || $change == handler || $change == altstack || $change == pdeath || $change == subreaper ]] && want=True
	[[ $(json_field "$WORK/r.json" in_place) == "$want" ]] ||
		fail "$change: in_place is not $want: $(cat "$WORK/r.json")"
	now=$(cmd look)
	[[ $now == "$snap_attrs" ]] || fail "$change: after the rollback to s$i: $now, SNAP: $snap_attrs"
	echo "$change: in place $want: $(json_field "$WORK/r.json" why 2>/dev/null)"
done
# a snapshot whose personality, oom_score_adj and child-subreaper flag are
# not a new process's: the full restore (native) gives them back
cmd personality >/dev/null
cmd subreaper >/dev/null
cmd securebits >/dev/null
with=$(cmd oom)
"$FP" snap at sx >/dev/null || fail "snap sx"
[[ $(cmd plain) != "$with" ]] || fail "plain changed nothing"
"$FP" restore at sx --json >"$WORK/r.json" || fail "restore sx: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == False ]] || fail "restore sx: in place: $(cat "$WORK/r.json")"
now=$(cmd look)
[[ $now == "$with" ]] || fail "after the full restore of sx: $now, SNAP: $with"
"$FP" stop --kill at >/dev/null 2>&1

# a child (there at SNAP) that made itself a process group leader since
st2=$WORK/status2
cat >"$WORK/pg.py" <<'PY'
import os, signal, sys
status = sys.argv[1]
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
r, w = os.pipe()
child = os.fork()
if child == 0:
    def lead(*_):
        os.setpgid(0, 0)
        say("led %d" % os.getpgid(0))
    signal.signal(signal.SIGUSR1, lead)
    signal.signal(signal.SIGUSR2, lambda *_: say("pgid %d" % os.getpgid(0)))
    os.write(w, b"x")
    while True:
        signal.pause()
os.read(r, 1)
say("ready %d %d" % (os.getpid(), child))
while True:
    signal.pause()
PY
"$FP" run --detach --name pg -- python3 "$WORK/pg.py" "$st2" >/dev/null || fail "run pg"
track_pid "$(session_field pg helper_pid)"
wait_for 60 grep -qs '^ready ' "$st2" || fail "pg not ready: $(cat "$st2" 2>/dev/null)"
read -r _ parent child < <(grep '^ready ' "$st2")
"$FP" snap pg s1 >/dev/null || fail "snap pg s1"
ask "$child" USR1 "$st2" 'led ' || fail "the child did not lead its group"
"$FP" restore pg s1 --json >"$WORK/r.json" || fail "restore pg s1: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == False ]] || fail "setpgid since SNAP: in place: $(cat "$WORK/r.json")"
grep -q "process group" "$WORK/r.json" || fail "the full restore does not say why: $(cat "$WORK/r.json")"
ask "$child" USR2 "$st2" 'pgid ' || fail "no pgid from the child"
[[ $(grep '^pgid ' "$st2" | tail -n 1) == "pgid $parent" ]] ||
	fail "the child's group after the rollback: $(grep '^pgid ' "$st2" | tail -n 1), SNAP: $parent"
"$FP" stop --kill pg >/dev/null 2>&1
echo ok
