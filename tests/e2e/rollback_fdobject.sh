# A rollback in place leaves pipes, sockets and event fds as they are, so
# it must prove that each is still the one SNAP had (rollback_fdkind.c):
# an fd that is another pipe or socket now would keep the new one, and the
# restore would claim SNAP's state. A Python program holds a pipe, a
# socketpair and an eventfd. After s1 it puts another object on one of
# these fds: through libc (the shim's wrappers see it), or by a raw dup3
# system call the shim does not see (its table then calls the fd
# untouched). Each rollback must end with every fd connected as at the
# snapshot: a byte written into the pipe's write end comes out of its read end,
# a datagram sent on one end of the socketpair comes out of the other, and
# the eventfd is an eventfd. So it is a full restore (new objects, the
# same connections), and `restore --json` says why. A full restore's new
# pipes and sockets stand for the ones the snapshots recorded
# (rollback_objmap.c): a rollback to s1 with nothing changed is in place.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/objs.py" <<'PY'
import ctypes, os, signal, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
status, work = sys.argv[1:3]
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
r, w = os.pipe()
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
efd = os.eventfd(0)
def change(*_):
    mode = open(os.path.join(work, "mode")).read().strip()
    how, what = mode.split("-")
    if what == "pipe":
        r2, w2 = os.pipe()
        new, target = r2, r
    elif what == "sock":
        c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        new, target = c.detach(), a.fileno()
    else:  # a pipe onto the eventfd
        r2, w2 = os.pipe()
        new, target = r2, efd
    if how == "wrap":
        os.dup2(new, target)
    else:
        libc.syscall(292, new, target, 0)  # dup3, unseen by the shim
    say("changed " + mode)
def check(*_):
    bad = []
    try:
        os.write(w, b"x")
        os.set_blocking(r, False)
        if os.read(r, 1) != b"x":
            bad.append("pipe")
    except OSError as e:
        bad.append("pipe: %s" % e)
    try:
        b.send(b"y")
        a.setblocking(False)
        if a.recv(1) != b"y":
            bad.append("socketpair")
    except OSError as e:
        bad.append("socketpair: %s" % e)
    if os.readlink("/proc/self/fd/%d" % efd) != "anon_inode:[eventfd]":
        bad.append("eventfd is %s" % os.readlink("/proc/self/fd/%d" % efd))
    say("check " + ("ok" if not bad else "FAIL " + ", ".join(bad)))
signal.signal(signal.SIGUSR1, change)
signal.signal(signal.SIGUSR2, check)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
"$FP" run --detach --name fo -- python3 "$WORK/objs.py" "$st" "$WORK" >/dev/null || fail "run"
track_pid "$(session_field fo helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
"$FP" snap fo s1 >/dev/null || fail "snap s1"

# round SNAP MODE IN_PLACE: change (or not: MODE none), roll back to SNAP,
# check the connections
round() {
	local pid snap=$1 mode=$2
	pid=$(session_field fo target_pid)
	if [[ $mode != none ]]; then
		echo "$mode" >"$WORK/mode"
		ask "$pid" USR1 "$st" changed || fail "$mode: the target did not change its fds"
	fi
	"$FP" restore fo "$snap" --json >"$WORK/r.json" || fail "$mode: restore $snap: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == "$3" ]] || fail "$mode: in_place is not $3: $(cat "$WORK/r.json")"
	if [[ $3 == False ]]; then
		grep -q "not the .* SNAP had there\|SNAP had anon_inode" "$WORK/r.json" ||
			fail "$mode: the restore does not say which fd differs: $(cat "$WORK/r.json")"
	fi
	pid=$(session_field fo target_pid)
	track_pid "$pid"
	ask "$pid" USR2 "$st" 'check ' || fail "$mode: no check answer"
	local line
	line=$(grep '^check ' "$st" | tail -n 1)
	[[ $line == "check ok" ]] || fail "$mode: after the rollback: $line ($(cat "$WORK/r.json"))"
	echo "$mode to $snap: $line, in place $3, fds from $(json_field "$WORK/r.json" fds_from 2>/dev/null):" \
		"$(json_field "$WORK/r.json" why 2>/dev/null)"
}
# Each change right after a snapshot of the same processes: the shim's
# table marks that snapshot, so a raw dup3 is the table's blind spot
# unless the rollback proves the objects it calls untouched.
i=1
for m in wrap-pipe wrap-sock wrap-efd raw-pipe raw-sock raw-efd; do
	i=$((i + 1))
	"$FP" snap fo "s$i" >/dev/null || fail "snap s$i"
	if [[ $m == raw-* ]]; then # first a rollback that takes the table's word
		round "s$i" none True
		[[ $(json_field "$WORK/r.json" fds_from) == table ]] ||
			fail "the fds of a rollback to s$i did not come from the shim's table: $(cat "$WORK/r.json")"
	fi
	round "s$i" "$m" False
done
# Every object above was made anew by a full restore: s1's are known
# under their new inodes, so going back to s1 needs no restore.
round s1 none True
round s1 wrap-pipe False
"$FP" stop --kill fo >/dev/null 2>&1
echo ok
