# Python multiprocessing (real_pymp.py: main and two worker processes with
# a shared Value, a Queue and a Lock; their memory and semaphores are
# mappings of files deleted in /dev/shm, which forkpoint dumps as memfds).
# Each request makes main queue 1..10 and the workers add them to the
# shared value. Ways: dump + native restore (the value carries on from the
# snapshot's, through the restored queue, lock and workers); dump
# --leave-running with the original carrying on, then its image restored;
# `criu restore` of forkpoint's image.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
py=/usr/bin/python3
st=$WORK/pymp.st
start() {
	rm -f "$st"
	(cd "$WORK" && exec setsid "$py" "$(dirname "$0")/real_pymp.py" "$st" </dev/null >"$WORK/pymp.log" 2>&1 &)
	wait_for 30 grep -qs '^ready' "$st" || fail "real_pymp.py not ready: $(cat "$st" "$WORK/pymp.log" 2>/dev/null)"
	pid=$(awk '/^ready/{print $2}' "$st")
	kids=$(awk '/^ready/{print $3}' "$st" | sed 's/kids=//; s/,/ /')
	track_pid "$pid"
	for k in $kids; do track_pid "$k"; done
}
gone() { for p in $pid $kids; do [[ -e /proc/$p ]] && return 1; done; return 0; }
stop_all() { kill -9 $pid $kids 2>/dev/null; wait_for 15 gone || fail "real_pymp.py did not die"; }
ask() { # WHAT EXPECTED-VALUE [PID]
	local n
	n=$(grep -c '^value \|^FAIL' "$st")
	kill -USR2 "${3:-$pid}" || fail "$1: cannot signal ${3:-$pid}"
	wait_for 40 bash -c "(( \$(grep -c '^value \|^FAIL' '$st') > $n ))" || fail "$1: no answer: $(tail -n 2 "$st")"
	local line
	line=$(grep '^value \|^FAIL' "$st" | tail -n 1)
	[[ $line == "value $2 "* ]] || fail "$1: '$line', expected value $2"
}

# 1. dump + native restore.
start
ask "before the dump" 55
grep -q '^/dev/shm/.* (deleted)' <(awk '{print $6, $7}' "/proc/$pid/maps") || fail "no mapping of a deleted /dev/shm file"
"$FP" dump -t "$pid" -D "$WORK/d1" -o "$WORK/dump1.log" >/dev/null || fail "dump: $(tail -n 3 "$WORK/dump1.log")"
wait_for 15 gone || fail "the tree is still there after the dump"
[[ -e $WORK/d1/memfd.img ]] || fail "no memfd.img"
out=$("$FP" restore -D "$WORK/d1" --engine native -d -o "$WORK/native1.log" 2>&1) || fail "native restore: $out"
[[ $out == "$pid" ]] || fail "native restore printed '$out'"
grep -q "natively (3 processes)" "$WORK/native1.log" || fail "not restored natively: $(tail -n 3 "$WORK/native1.log")"
ask "after the native restore" 110
ask "again after the native restore" 165

# 2. --leave-running: the original carries on; its image restores.
"$FP" dump -R -t "$pid" -D "$WORK/d2" -o "$WORK/dump2.log" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/dump2.log")"
ask "the original after dump -R" 220
stop_all
"$FP" restore -D "$WORK/d2" --engine native -d -o "$WORK/native2.log" >/dev/null || fail "restore of the dump -R image"
ask "after restoring the dump -R image" 220

# 3. `criu restore` of forkpoint's image.
if [[ -n $CRIU ]]; then
	stop_all
	criu_restore "$WORK/d2"
	ask "after criu restore" 220
else
	skip_part "criu restore of forkpoint's image of Python multiprocessing"
fi
kill -TERM "$pid"
wait_for 30 gone || fail "real_pymp.py did not end on SIGTERM"
grep -q '^exit 220' "$st" || fail "no clean exit: $(tail -n 2 "$st")"
echo ok
