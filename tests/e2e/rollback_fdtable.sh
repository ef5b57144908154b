# A rollback in place lists the fds created or closed since SNAP from the
# shim's table, and /proc stays the check (issue 16, rollback_fdtab.c).
# A Python program holds 3,000 fds (files at their own offsets, /dev/null,
# dups, a pipe). After s1 it changes them through libc (so through the
# shim's wrappers): closes 100 files, opens 150 new ones, dup2's files onto new
# numbers and /dev/null fds over each other, moves 300 offsets. The rollback must
# come out from the table ("fds_from": "table") with every fd, link and
# offset as at s1. Then the table is made wrong on purpose, by system
# calls the shim does not see: a raw openat (the count of /proc/PID/fd is
# not the table's: the rollback says so and lists /proc, in place), and a
# raw dup3 of another file onto a file fd the table calls untouched (its
# inode is not SNAP's: said, and compared from /proc again, which finds
# another file on a fd of SNAP: a full restore), and raw fcntl(F_SETFD)s
# that flip close-on-exec on fds the table calls untouched (each fd's flag
# is read from the kernel's bitmap: in place, set back), and a raw dup3 of
# a file onto a /dev/null fd (its inode by the kernel's fd iterator: the
# table is said to be wrong, a full restore). All come out right.
# Then the same program as the session root's child: the first two rounds
# again, the child's fds from its own table (each process has one); and
# the raw changes again in a session whose helper loads no BPF iterator.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
for f in a b c; do head -c 65536 /dev/urandom >"$WORK/$f"; done
cat >"$WORK/fds.py" <<'PY'
import ctypes, os, resource, signal, stat, sys
libc = ctypes.CDLL(None, use_errno=True)
status, work = sys.argv[1:3]
if sys.argv[3:] == ["child"]:  # the fds' holder is the root's child
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        sys.exit(0)
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
files = [os.path.join(work, x) for x in "abc"]
r, w = os.pipe()
first_null = None
for i in range(3000):
    k = i % 4
    if k == 0:
        fd = os.open(files[i % 3], os.O_RDONLY)
        os.lseek(fd, i % 60000, os.SEEK_SET)
    elif k == 1:
        fd = os.open("/dev/null", os.O_RDWR)
        first_null = first_null if first_null is not None else fd
    elif k == 2:
        fd = os.dup(first_null)
    else:
        fd = os.open(files[(i + 1) % 3], os.O_RDWR)
        os.lseek(fd, (7 * i) % 60000, os.SEEK_SET)
def state():
    out = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            link = os.readlink("/proc/self/fd/%d" % fd)
            pos = os.lseek(fd, 0, os.SEEK_CUR) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            continue  # listdir's own fd
        out[fd] = ("pipe" if link.startswith("pipe:") else link, pos,  # a full restore makes new pipes
                   os.get_inheritable(fd))
    return out
snap = state()
def change(*_):
    mode = open(os.path.join(work, "mode")).read().strip()
    fds = sorted(fd for fd in snap if fd > 10)
    if mode == "wrap":
        for _ in range(150):  # before the closes: numbers SNAP did not have
            os.open(files[1], os.O_RDONLY)
        for fd in [fd for fd in fds[100:300] if snap[fd][1] is not None]:
            os.close(fd)  # regular files (reopened in place; /dev/null is not)
        file_fds = [fd for fd in fds[300:] if snap[fd][1] is not None]
        null_fds = [fd for fd in fds[300:] if snap[fd][0] == "/dev/null"]
        for i, a in enumerate(file_fds[:40]):
            os.dup2(a, 3600 + i)  # onto numbers SNAP did not have
        for a, b in zip(null_fds[:20], null_fds[20:40]):
            os.dup2(a, b)  # /dev/null onto /dev/null
        for fd in file_fds[100:400]:
            os.lseek(fd, 12345, os.SEEK_SET)
    elif mode == "rawopen":
        fd = libc.syscall(257, -100, files[2].encode(), os.O_RDONLY, 0)  # openat
        os.lseek(fds[-1], 999, os.SEEK_SET) if snap[fds[-1]][1] is not None else None
        say("raw fd %d" % fd)
    elif mode == "rawcloexec":  # fcntl(F_SETFD) by the system call: the table sees nothing
        file_fds = [fd for fd in fds if snap[fd][1] is not None][::9]
        null_fds = [fd for fd in fds if snap[fd][0] == "/dev/null"][::9]
        for fd in file_fds + null_fds:
            libc.syscall(72, fd, 2, 0 if libc.syscall(72, fd, 1, 0) else 1)  # F_SETFD (F_GETFD ^ 1)
        say("raw cloexec on %d fds" % len(file_fds + null_fds))
    elif mode == "rawdupnull":  # a file onto a /dev/null fd, unseen by the shim
        null_fds = [fd for fd in fds if snap[fd][0] == "/dev/null"]
        other = os.open(files[2], os.O_RDONLY)
        libc.syscall(292, other, null_fds[7], 0)  # dup3
        os.close(other)
        say("raw dup3 onto /dev/null's %d" % null_fds[7])
    elif mode == "rawdup":
        file_fds = [fd for fd in fds if snap[fd][1] is not None and snap[fd][0] != files[2]]
        other = os.open(files[2], os.O_RDONLY)
        libc.syscall(292, other, file_fds[5], 0)  # dup3, unseen by the shim
        os.close(other)
        say("raw dup3 onto %d" % file_fds[5])
    say("changed " + mode)
def check(*_):
    now = state()
    bad = ["fd %d: %s, at SNAP %s" % (fd, now.get(fd), snap.get(fd))
           for fd in sorted(set(now) | set(snap)) if now.get(fd) != snap.get(fd)]
    say("check " + ("ok %d fds" % len(now) if not bad else "FAIL %d differ: %s" % (len(bad), "; ".join(bad[:5]))))
signal.signal(signal.SIGUSR1, change)
signal.signal(signal.SIGUSR2, check)
say("ready %d %d" % (os.getpid(), len(snap)))
while True:
    signal.pause()
PY
S=ft
start() { # [child]: a session named $S
	rm -f "$st"
	"$FP" run --detach --name "$S" -- python3 "$WORK/fds.py" "$st" "$WORK" "$@" >/dev/null || fail "run"
	track_pid "$(session_field "$S" helper_pid)"
	wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
	pid=$(awk '/^ready/ { print $2 }' "$st")
	track_pid "$pid"
	# a child's fds come from its table from the first snapshot after
	# one it lived through (a busy shell's pipeline children are not)
	[[ $# == 0 ]] || "$FP" snap "$S" s0 >/dev/null || fail "snap s0"
	"$FP" snap "$S" s1 >/dev/null || fail "snap s1"
}
start

# round SNAP MODE FDS_FROM IN_PLACE: change, roll back to SNAP, check every fd
round() {
	local n snap=$1
	shift
	echo "$1" >"$WORK/mode"
	n=$(grep -c '^changed' "$st")
	kill -USR1 "$pid"
	wait_for 30 bash -c "(( \$(grep -c '^changed' '$st') > $n ))" || fail "$1: the target did not change its fds"
	"$FP" restore "$S" "$snap" --json >"$WORK/r.json" || fail "$1: restore $snap: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == "$3" ]] || fail "$1: in_place is not $3: $(cat "$WORK/r.json")"
	if [[ $3 == True ]]; then
		[[ $(json_field "$WORK/r.json" fds_from) == "$2" ]] ||
			fail "$1: the fds came from $(json_field "$WORK/r.json" fds_from), not $2: $(cat "$WORK/r.json")"
	fi
	n=$(grep -c '^check ' "$st")
	kill -USR2 "$pid"
	wait_for 30 bash -c "(( \$(grep -c '^check ' '$st') > $n ))" || fail "$1: no check answer"
	local line
	line=$(grep '^check ' "$st" | tail -n 1)
	[[ $line == "check ok"* ]] || fail "$1: after the rollback: $line ($(cat "$WORK/r.json"))"
	echo "$1: $line, fds from $(json_field "$WORK/r.json" fds_from 2>/dev/null), $(json_field "$WORK/r.json" phases_ms 2>/dev/null)"
}
two_rounds() {
	round s1 wrap table True
	# The next snapshot, and a rollback to it
	"$FP" snap "$S" s2 >/dev/null || fail "snap s2"
	round s2 rawopen proc True
	grep -q "fds of $pid listed from /proc: /proc/$pid/fd has [0-9]* fds, the shim's table" "$WORK/r.json" ||
		fail "the restore does not say why the fds came from /proc: $(cat "$WORK/r.json")"
}
two_rounds
"$FP" snap ft s3 >/dev/null || fail "snap s3"
round s3 wrap table True # the raw fd was closed: the table agrees with /proc again
# close-on-exec flipped behind the table's back on fds it calls untouched:
# read from the kernel's bitmap, set back in place
round s3 rawcloexec table True
grep -q "close-on-exec from the kernel's bitmap" "$WORK/r.json" ||
	fail "the rollback does not say where close-on-exec came from: $(cat "$WORK/r.json")"
# a file dup'ed onto a /dev/null fd the table calls untouched: its inode
# (from the kernel's fd iterator) is not SNAP's, the table is said to be
# wrong, and the fds compared from /proc: a full restore
"$FP" snap ft s4 >/dev/null || fail "snap s4"
round s4 rawdupnull proc False
grep -q "is not the file SNAP had, though the shim's table says no wrapper touched it" "$WORK/r.json" ||
	fail "the restore does not say the table was wrong about a /dev/null fd: $(cat "$WORK/r.json")"
"$FP" snap ft s4b >/dev/null || fail "snap s4b"
round s4b rawdup proc False
grep -q "is not the file SNAP had, though the shim's table says no wrapper touched it" "$WORK/r.json" ||
	fail "the restore does not say the table was wrong about an fd: $(cat "$WORK/r.json")"
"$FP" stop --kill ft >/dev/null 2>&1
S=ftc
start child
two_rounds
"$FP" stop --kill "$S" >/dev/null 2>&1
# Without the kernel's iterators (FP_DUMP_VMFLAGS_SMAPS=1 keeps the helper
# from loading any BPF): each fd read from /proc (close-on-exec from its
# fdinfo, its link), only the list from the table
S=ftn
FP_DUMP_VMFLAGS_SMAPS=1 start
round s1 rawcloexec table True
grep -q "close-on-exec from fdinfo" "$WORK/r.json" || fail "no BPF: not from fdinfo: $(cat "$WORK/r.json")"
"$FP" snap "$S" s2 >/dev/null || fail "snap s2"
round s2 rawdupnull table False
grep -q "is $WORK/c, SNAP has /dev/null" "$WORK/r.json" ||
	fail "no BPF: the restore does not name the /dev/null fd: $(cat "$WORK/r.json")"
"$FP" stop --kill "$S" >/dev/null 2>&1
echo ok
