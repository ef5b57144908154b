# kill -9 of the dumper at random moments: the target keeps running and
# verifies, and there is never a snapshot directory without a complete,
# valid manifest.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
ROUNDS=${DUMP_KILL_ROUNDS:-30}
start_ct t "$T/ct_heap" --mib=64
ct_verify t 1
n=1 killed=0 finished=0
for ((i = 1; i <= ROUNDS; i++)); do
	d=$WORK/k$i
	# both ways of holding the pages while the target runs on
	mode=fork; ((i % 2)) && mode=precopy
	"$FP" dump -R -t "$PID" -D "$d" --compress none --pages $mode >/dev/null 2>&1 & dp=$!
	# 0-250 ms: covers seizing, injection, the page copy, the writing and
	# sometimes the end (then the snapshot must be complete and valid)
	delay=$(printf '0.%03d' $((RANDOM % 250)))
	sleep "$delay"
	kill -9 "$dp" 2>/dev/null && killed=$((killed + 1))
	rc=0; wait "$dp" 2>/dev/null || rc=$?
	# killed (137) or done (0): a dump after a killed one must work too (the
	# frozen copy the killed one left is dying or a zombie: waited for, reaped)
	[[ $rc == 0 || $rc == 137 ]] || fail "round $i: the dump failed (exit $rc): $(cat "$d.failed.log" 2>/dev/null | tail -n 3)"
	alive "$PID" || fail "round $i: the target died"
	wait_for 10 bash -c "[[ \$(awk '/TracerPid/{print \$2}' /proc/$PID/status) == 0 ]]" ||
		fail "round $i: the target is still traced after the dumper died"
	if [[ -e $d ]]; then
		[[ -f $d/forkpoint.manifest ]] || fail "round $i: $d exists without a manifest"
		"$FP" decompress --verify "$d" || fail "round $i: $d has a manifest but does not verify"
		finished=$((finished + 1))
	fi
	grep -q '^State:.*[tT]' "/proc/$PID/status" && fail "round $i: the target was left stopped"
	if ! (ct_verify t $((++n))); then
		echo "state of $PID: $(grep State /proc/$PID/status) syscall: $(cat /proc/$PID/syscall) wchan: $(cat /proc/$PID/wchan)"
		grep -c . "/proc/$PID/maps"; cat "/proc/$PID/maps" | tail -n 8
		fail "round $i (dumper killed after ${delay}s): the target does not verify"
	fi
done
echo "$ROUNDS rounds: $killed killed, $finished finished before the kill"

# Deterministic: the dumper dies (FP_DUMP_TEST_CRASH=N) just before the N-th
# ptrace resume of an injected syscall, for every N until a dump gets
# through: the creation and removal of the trampoline page, every call
# through it, the clone that makes the frozen copy and the wait4 that reaps
# it; with --pages precopy also the userfaultfd the target makes and closes
# again. The target must carry on with its fd table as it was (ct_verify
# compares it), and the copy must never run: at most a zombie child is
# left, which the next dump reaps.
TH=$T/ct_threads; [[ -x $TH ]] || TH=$T/dump_threads
crash_loop() { # MODE
	local mode=$1 m=0 crash=0 rc
	start_ct "th-$mode" "$TH"
	while :; do
		crash=$((crash + 1))
		((crash < 400)) || fail "$mode: the dump never got through"
		rc=0
		FP_DUMP_TEST_CRASH=$crash "$FP" dump -R -t "$PID" -D "$WORK/c$mode$crash" --compress none --pages "$mode" >/dev/null 2>&1 || rc=$?
		alive "$PID" || fail "$mode, crash point $crash: the target died"
		wait_for 10 bash -c "[[ \$(awk '/TracerPid/{print \$2}' /proc/$PID/status) == 0 ]]" ||
			fail "$mode, crash point $crash: the target is still traced"
		# a copy may still be dying (killed with the dumper); it must never run on
		wait_for 10 bash -c "[[ \$(ps -o stat= --ppid $PID | grep -vc '^Z') == 0 ]]" ||
			fail "$mode, crash point $crash: a copy of the target is running: $(ps -o pid,stat,comm --ppid "$PID")"
		ct_verify "th-$mode" $((++m))
		if ((rc == 0)); then
			[[ -f $WORK/c$mode$crash/forkpoint.manifest ]] || fail "$mode, crash point $crash: dump succeeded without a snapshot"
			break
		fi
		# killed while reaping the copy: the snapshot was already published
		if [[ -e $WORK/c$mode$crash ]]; then
			[[ -f $WORK/c$mode$crash/forkpoint.manifest ]] || fail "$mode, crash point $crash: $WORK/c$mode$crash exists without a manifest"
			"$FP" decompress --verify "$WORK/c$mode$crash" || fail "$mode, crash point $crash: the snapshot does not verify"
		fi
	done
	echo "$mode: $((crash - 1)) crash points survived"
	# A last dump reaps whatever copies the crashes left.
	"$FP" dump -R -t "$PID" -D "$WORK/last-$mode" --compress none >/dev/null || fail "$mode: the last dump failed"
	[[ -z $(ps -o pid= --ppid "$PID") ]] || fail "$mode: children left: $(ps -o pid,stat,comm --ppid "$PID")"
	ct_verify "th-$mode" $((++m))
	rm -rf "$WORK"/c$mode*
}
crash_loop fork
crash_loop precopy
echo ok
