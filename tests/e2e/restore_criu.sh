# forkpoint restore --engine criu restores the same images through
# `criu restore` (forkpoint's zstd page store is expanded into a private
# tmpfs copy; the snapshot directory is not modified), waits for the restored
# process without -d, and the default engine uses the native one where it can
# (a CRIU dump of a socket pair with a queued message, now too).
source "$(dirname "$0")/../lib.sh"
need_criu
[[ $(id -u) == 0 ]] || { echo "needs root"; exit 77; }

start() {
	local name=$1; shift
	ST=$WORK/$name.status
	"$@" </dev/null >"$WORK/$name.out" 2>&1 &
	TPID=$!; track_pid "$TPID"
	wait_for 20 grep -qs '^ready' "$ST" || fail "$name did not get ready: $(cat "$WORK/$name.out")"
}
dump() {
	mkdir -p "$WORK/$1"
	criu_run dump -t "$TPID" -D "$WORK/$1" -o dump.log -v4 || fail "criu dump of $1 failed"
	wait "$TPID" 2>/dev/null
	wait_for 10 bash -c "! kill -0 $TPID 2>/dev/null" || fail "$TPID still alive after the dump"
}
verify() { # N: asks for verification N; the new answer must be ok
	local before
	before=$(grep -c "^verify $1 " "$ST")
	kill -USR2 "$TPID" || fail "restored $TPID is not running"
	wait_for 30 bash -c "(( \$(grep -c '^verify $1 ' '$ST') > $before ))" || fail "no verify $1 from $TPID: $(tail -n 3 "$ST")"
	grep "^verify $1 " "$ST" | tail -n 1 | grep -q "^verify $1 ok pid=$TPID" || fail "verify $1: $(grep "^verify $1 " "$ST" | tail -n 1)"
}
restore() { # NAME ENGINE
	local out
	out=$("$FP" restore -D "$WORK/$1" --engine "$2" -d -o "$WORK/$1.$2.log" 2>"$WORK/$1.$2.err") ||
		fail "$2 restore of $1: $(cat "$WORK/$1.$2.err")"
	[[ $out == "$TPID" ]] || fail "restore printed '$out', expected the pid $TPID"
}

start heap "$T/ct_heap" "$WORK/heap.status" --mib=8 --setsid --quiet-stdio --same-pid
dump heap; restore heap criu; verify 1
kill -9 "$TPID"; wait_for 10 bash -c "! kill -0 $TPID 2>/dev/null" || fail "$TPID did not die"
restore heap criu; verify 1 # the same image again
kill -9 "$TPID"

mkdir -p "$WORK/fdir"
start files "$T/ct_files" "$WORK/files.status" --dir="$WORK/fdir" --setsid --quiet-stdio --same-pid
dump files; restore files criu; verify 1
kill -9 "$TPID"

# Shared anonymous memory: CRIU's dump restores natively (rst_shmem.c).
mkdir -p "$WORK/fdir2"
start shanon "$T/ct_files" "$WORK/shanon.status" --dir="$WORK/fdir2" --shared-anon --setsid --quiet-stdio --same-pid
dump shanon; restore shanon native; verify 1
kill -9 "$TPID"

# A unix socket pair with a queued message, dumped by CRIU: the native
# engine restores it (restore/rst_usk.c) with the message, and auto picks
# the native engine without falling back.
start sockpair python3 -S -c '
import os, signal, socket, sys
os.setsid()
st = open(sys.argv[1], "a", buffering=1)
a, b = socket.socketpair()
a.send(b"queued")
n = 0
def verify(sig, frame):
    global n
    n += 1
    ok = b.recv(6, socket.MSG_PEEK) == b"queued"
    st.write("verify %d %s pid=%d\n" % (n, "ok" if ok else "FAIL", os.getpid()))
signal.signal(signal.SIGUSR2, verify)
st.write("ready %d\n" % os.getpid())
while True: signal.pause()
' "$WORK/sockpair.status"
dump sockpair
restore sockpair native; verify 1
kill -9 "$TPID"
wait_for 20 bash -c "! kill -0 $TPID 2>/dev/null" || fail "$TPID did not die"
restore sockpair auto; verify 1 # the same image again
! grep -q "restored with criu" "$WORK/sockpair.auto.err" || fail "auto fell back to criu: $(cat "$WORK/sockpair.auto.err")"
kill -9 "$TPID"

# forkpoint's zstd page store: criu gets a decompressed private copy.
if "$FP" dump --help >/dev/null 2>&1; then
	start fpz "$T/ct_heap" "$WORK/fpz.status" --mib=8 --setsid --quiet-stdio --same-pid
	"$FP" dump -t "$TPID" -D "$WORK/fpz" >/dev/null || fail "forkpoint dump failed"
	wait "$TPID" 2>/dev/null
	ls "$WORK/fpz"/pages-*.fpz >/dev/null 2>&1 || fail "no zstd page store"
	before=$(cd "$WORK/fpz" && ls -l --time-style=+%s.%N | sha256sum)
	restore fpz criu; verify 1
	after=$(cd "$WORK/fpz" && ls -l --time-style=+%s.%N | sha256sum)
	[[ $before == "$after" ]] || fail "the criu engine modified the snapshot directory"
	ls "$WORK/fpz"/pages-*.img >/dev/null 2>&1 && fail "pages-N.img appeared in the snapshot"
	kill -9 "$TPID"
fi

# Without -d forkpoint waits for the criu-restored process and exits with
# its status (it becomes a subreaper so the process is its child).
exec 8< <(exec sleep 100000)
track_pid $!
setsid bash -c 'v=kept-$$; echo "ready $$" >>'"$WORK/sh.status"'; read x; echo "eof $v" >>'"$WORK/sh.status"'; exit 7' <&8 >/dev/null 2>&1 &
TPID=$!; track_pid "$TPID"
exec 8<&-
wait_for 20 grep -qs '^ready' "$WORK/sh.status" || fail "bash did not get ready"
mkdir -p "$WORK/sh"
criu_run dump -t "$TPID" -D "$WORK/sh" -o dump.log -v4 || fail "criu dump of bash failed"
wait "$TPID" 2>/dev/null
timeout 60 "$FP" restore -D "$WORK/sh" --engine criu -o "$WORK/sh.log"; rc=$?
[[ $rc == 7 ]] || fail "criu-restored bash should exit 7 through forkpoint, got $rc"
grep -q "^eof kept-$TPID$" "$WORK/sh.status" || fail "bash lost its variable: $(cat "$WORK/sh.status")"
echo ok
