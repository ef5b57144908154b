# The shim's fd table as a shortcut at the stop (helper/dump/dump_fdshort.c),
# and /proc as its check. A program under the shim opens three files through
# libc (the table knows them). The dump is held between its look and its
# stop (FORKPOINT_FAULT=dump-pause-after-look), and in that window:
#   s1: the program reads 3 bytes from one file (its offset moves, no
#       wrapper sees it): the shortcut takes every file, reads the offset at
#       the stop through its copy of the fd, and the restored fd has it;
#   s2: the program moves another file onto fd A with a raw dup3 system call
#       keeping its flags (the table still says A is the first file: it
#       lies; only the description's address tells). The check after
#       the resume finds it, says so (snap --json shim_disagree, shim_note;
#       dump.log) and the snapshot is taken again from /proc: the restored
#       fd A is the other file at its offset.
source "$(dirname "$0")/../lib.sh"

st=$WORK/short.st
printf 'aaaaaaaaaaaaaaaa\n' >"$WORK/a"
printf 'bbbbbbbbbbbbbbbb\n' >"$WORK/b"
printf 'cccccccccccccccc\n' >"$WORK/c"
cat >"$WORK/short.py" <<'PY'
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
status, a, b, c = sys.argv[1:5]
fa, fb, fc = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY), os.open(c, os.O_RDONLY)
os.lseek(fa, 5, os.SEEK_SET)
os.lseek(fb, 7, os.SEEK_SET)
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
def read3(*_):
    os.read(fc, 3)
    say("read")
def lie(*_):
    # raw dup3(fb, fa, O_CLOEXEC): the same flags and close-on-exec as
    # fa's, so only the description tells the change
    assert libc.syscall(292, fb, fa, os.O_CLOEXEC) == fa, ctypes.get_errno()
    say("swapped")
signal.signal(signal.SIGUSR1, read3)
signal.signal(signal.SIGUSR2, lie)
say("ready %d %d %d %d" % (os.getpid(), fa, fb, fc))
while True:
    time.sleep(1)
PY
FORKPOINT_FAULT=dump-pause-after-look "$FP" run --detach --name short -- \
	python3 "$WORK/short.py" "$st" "$WORK/a" "$WORK/b" "$WORK/c" >/dev/null || fail "run"
track_pid "$(session_field short helper_pid)"
wait_for 20 grep -q '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
read -r _ pid fa fb fc < <(grep '^ready ' "$st")
track_pid "$pid"
grep -q libforkpoint-preload "/proc/$pid/maps" || fail "the shim is not loaded"
SNAPS=$FORKPOINT_HOME/sessions/short/snapshots

held_snap() { # NAME SIGNAL WORD: a snap held after its look while the target gets SIGNAL
	local name=$1 sig=$2 word=$3
	"$FP" snap short "$name" --json >"$WORK/$name.json" 2>"$WORK/$name.err" &
	local snap=$!
	wait_for 30 test -e "$SNAPS/dump-pause-after-look.paused" || fail "$name: the dump never paused after its look"
	kill "-$sig" "$pid"
	wait_for 20 grep -q "^$word" "$st" || fail "$name: the target did not $word"
	touch "$SNAPS/dump-pause-after-look.go"
	wait "$snap" || fail "$name: snap failed: $(cat "$WORK/$name.json" "$WORK/$name.err")"
}

# Snapshots until the BPF fd iterators are loaded (the session's first one
# starts their loading): the check after the resume then compares each
# taken fd's description with its copy's by the kernel's addresses, and
# s2's lie must be found that way, not only through fdinfo.
through_snap() { # NAME
	"$FP" snap short "$1" --json >"$WORK/$1.json" 2>"$WORK/$1.err" &
	local snap=$!
	wait_for 30 test -e "$SNAPS/dump-pause-after-look.paused" || fail "$1: the dump never paused after its look"
	touch "$SNAPS/dump-pause-after-look.go"
	wait "$snap" || fail "$1: snap failed: $(cat "$WORK/$1.json" "$WORK/$1.err")"
}
for ((i = 0; i < 20; i++)); do
	through_snap w$i
	grep -Eq "checked after the resume in .* \([1-9][0-9]* by the kernel's addresses" "$SNAPS/w$i/dump.log" && break
done
((i < 20)) || fail "the fd iterators never checked a snapshot: $(grep -h 'checked after the resume' "$SNAPS"/w*/dump.log)"

held_snap s1 USR1 read
python3 - "$WORK/s1.json" <<'PY' || fail "s1: $(cat "$WORK/s1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["shim_checked"] is True and d["shim_disagree"] == 0, d
PY
grep -Eq "fds read while stopped .*, [1-9][0-9]* of them by the shim's shortcut" "$SNAPS/s1/dump.log" ||
	fail "s1: the shortcut took no fd: $(grep -E 'shortcut|while stopped' "$SNAPS/s1/dump.log")"
grep -Eq "fds taken by the shortcut checked after the resume in .* \([1-9][0-9]* by the kernel's addresses" \
	"$SNAPS/s1/dump.log" || fail "s1: the fds taken by the shortcut were not checked by their descriptions' addresses"

held_snap s2 USR2 swapped
python3 - "$WORK/s2.json" "$fa" <<'PY' || fail "s2 does not report the table's lie: $(cat "$WORK/s2.json")"
import json, sys
d, fa = json.load(open(sys.argv[1])), sys.argv[2]
assert d["shim_disagree"] >= 1, d
assert d["shim_note"] == "fd %s changed behind the table's back at the stop" % fa, d
PY
grep -q "without the look: .*the shim's table and /proc disagree (fd $fa changed behind the table's back" \
	"$SNAPS/s2/dump.log" || fail "s2: dump.log does not say why every fd was read again"

check_fd() { # FD PATH POS
	[[ $(readlink "/proc/$pid/fd/$1") == "$2" ]] || fail "fd $1 is not $2: $(ls -l "/proc/$pid/fd")"
	grep -q "^pos:[[:space:]]*$3\$" "/proc/$pid/fdinfo/$1" || fail "fd $1 offset, not $3: $(cat "/proc/$pid/fdinfo/$1")"
}
# The helper's dumps all pause after their look (the fault is in its
# environment), a restore's own save too: each is let through at once.
restore_through() { # SNAP (the save's pause is in the session's directory)
	"$FP" restore short "$1" >/dev/null 2>"$WORK/restore.err" &
	local r=$! at=$SNAPS/../dump-pause-after-look
	while kill -0 "$r" 2>/dev/null; do
		wait_for 60 bash -c "[[ -e '$at.paused' ]] || ! kill -0 $r 2>/dev/null" || fail "restore $1 hangs"
		[[ -e $at.paused ]] || continue
		touch "$at.go"
		wait_for 30 bash -c "[[ ! -e '$at.paused' ]]" || fail "restore $1: its save did not go on"
	done
	wait "$r" || fail "restore $1: $(cat "$WORK/restore.err")"
}
restore_through s1
pid=$(session_field short target_pid)
track_pid "$pid"
check_fd "$fa" "$WORK/a" 5
check_fd "$fc" "$WORK/c" 3
restore_through s2
pid=$(session_field short target_pid)
track_pid "$pid"
check_fd "$fa" "$WORK/b" 7
check_fd "$fb" "$WORK/b" 7
check_fd "$fc" "$WORK/c" 3
"$FP" stop --kill short >/dev/null 2>&1
echo ok
