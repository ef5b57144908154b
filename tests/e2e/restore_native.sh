# forkpoint restore --engine native: criu-dumped ct_heap, ct_threads, ct_files,
# python3 and bash come back with their pid, memory, threads and fds, and
# prove it themselves (SIGUSR2 -> "verify N ok"); forkpoint's own dumps chain.
source "$(dirname "$0")/../lib.sh"
need_criu
[[ $(id -u) == 0 ]] || { echo "needs root (clone3 set_tid)"; exit 77; }

# start NAME CMD...: runs a self-checking target; sets TPID, ST (status file).
start() {
	local name=$1; shift
	ST=$WORK/$name.status
	"$@" </dev/null >"$WORK/$name.out" 2>&1 &
	TPID=$!; track_pid "$TPID"
	wait_for 20 grep -qs '^ready' "$ST" || fail "$name did not get ready: $(cat "$WORK/$name.out")"
}
# dump NAME: criu dump of TPID into $WORK/NAME, then waits until the pid is free.
dump() {
	mkdir -p "$WORK/$1"
	criu_run dump -t "$TPID" -D "$WORK/$1" -o dump.log -v4 || fail "criu dump of $1 failed"
	wait "$TPID" 2>/dev/null
	! kill -0 "$TPID" 2>/dev/null || fail "$TPID still alive after the dump"
}
# verify N: asks the restored target for verification N and checks the answer.
verify() { # N: asks for verification N; the new answer must be ok
	local before
	before=$(grep -c "^verify $1 " "$ST")
	kill -USR2 "$TPID" || fail "restored $TPID is not running"
	wait_for 30 bash -c "(( \$(grep -c '^verify $1 ' '$ST') > $before ))" || fail "no verify $1 from $TPID: $(tail -n 3 "$ST")"
	grep "^verify $1 " "$ST" | tail -n 1 | grep -q "^verify $1 ok pid=$TPID" || fail "verify $1: $(grep "^verify $1 " "$ST" | tail -n 1)"
}
restore_native() {
	local out
	out=$("$FP" restore -D "$WORK/$1" --engine native -d -o "$WORK/$1.restore.log" 2>"$WORK/$1.err") ||
		fail "native restore of $1: $(cat "$WORK/$1.err") (log: $(grep -v syscall "$WORK/$1.restore.log" | tail -n 5))"
	[[ $out == "$TPID" ]] || fail "restore printed '$out', expected the pid $TPID"
	# CRIU wrote these images: no manifest, so restored unverified, and said so.
	[[ ! -e $WORK/$1/forkpoint.manifest ]] && { grep -q "restored unverified" "$WORK/$1.err" || fail "no unverified note: $(cat "$WORK/$1.err")"; }
	true
}

start heap "$T/ct_heap" "$WORK/heap.status" --mib=16 --setsid --quiet-stdio --same-pid
dump heap; restore_native heap; verify 1
kill -9 "$TPID"

start threads "$T/ct_threads" "$WORK/threads.status" --setsid --quiet-stdio --same-pid
dump threads; restore_native threads; verify 1; verify 2
kill -9 "$TPID"

mkdir -p "$WORK/fdir"
start files "$T/ct_files" "$WORK/files.status" --dir="$WORK/fdir" --setsid --quiet-stdio --same-pid
dump files; restore_native files; verify 1
kill -9 "$TPID"

# python3 with 200k dict entries; stdio on /dev/null and a status file.
cat >"$WORK/idle.py" <<'PY'
import hashlib, os, signal, sys
st = open(sys.argv[1], "a", buffering=1)
d = {i: str(i * 7919) for i in range(200000)}
h = hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest()
n = 0
def on_usr2(sig, frm):
    global n
    n += 1
    ok = hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest() == h
    st.write("verify %d %s pid=%d\n" % (n, "ok" if ok else "FAIL", os.getpid()))
signal.signal(signal.SIGUSR2, on_usr2)
st.write("ready %d\n" % os.getpid())
while True:
    signal.pause()
PY
start py setsid python3 "$WORK/idle.py" "$WORK/py.status"
TPID=$(awk '/^ready/{print $2}' "$ST"); track_pid "$TPID"
mkdir -p "$WORK/py"
criu_run dump -t "$TPID" -D "$WORK/py" -o dump.log -v4 || fail "criu dump of python3 failed"
wait "$TPID" 2>/dev/null
! kill -0 "$TPID" 2>/dev/null || fail "python3 $TPID still alive after the dump"
restore_native py; verify 1
kill -9 "$TPID"

# An idle bash blocked in read(0) on a pipe whose writer is outside the dump.
# Without -d forkpoint waits for it: after the restore its stdin pipe has no
# writer, so read returns EOF, bash reports its variable and exits 7.
exec 8< <(exec sleep 100000) # a pipe whose writer stays outside the dump
track_pid $!
setsid bash -c 'v=kept-$$; echo "ready $$" >>'"$WORK/sh.status"'; read x; echo "eof $v" >>'"$WORK/sh.status"'; exit 7' <&8 >/dev/null 2>&1 &
TPID=$!; track_pid "$TPID"
exec 8<&-
wait_for 20 grep -qs '^ready' "$WORK/sh.status" || fail "bash did not get ready"
mkdir -p "$WORK/sh"
criu_run dump -t "$TPID" -D "$WORK/sh" -o dump.log -v4 || fail "criu dump of bash failed"
wait "$TPID" 2>/dev/null
! kill -0 "$TPID" 2>/dev/null || fail "bash $TPID still alive after the dump"
timeout 30 "$FP" restore -D "$WORK/sh" --engine native -o "$WORK/sh.restore.log"; rc=$?
[[ $rc == 7 ]] || fail "restored bash should exit 7 through forkpoint, got $rc"
grep -q "^eof kept-$TPID$" "$WORK/sh.status" || fail "bash lost its variable: $(cat "$WORK/sh.status")"

# Chain: forkpoint's own dump (zstd page store) -> native restore, twice.
if "$FP" dump --help >/dev/null 2>&1; then
	start chain "$T/ct_heap" "$WORK/chain.status" --mib=8 --setsid --quiet-stdio --same-pid
	for i in 1 2; do
		"$FP" dump -t "$TPID" -D "$WORK/chain$i" >/dev/null || fail "forkpoint dump $i failed"
		wait "$TPID" 2>/dev/null
		wait_for 10 bash -c "! kill -0 $TPID 2>/dev/null" || fail "$TPID alive after dump $i"
		ls "$WORK/chain$i"/pages-*.fpz >/dev/null 2>&1 || fail "dump $i wrote no zstd page store"
		restore_native "chain$i"; verify "$i"
	done
	kill -9 "$TPID"
fi
echo ok
