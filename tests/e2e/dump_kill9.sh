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
	"$FP" dump -R -t "$PID" -D "$d" --compress none >/dev/null 2>&1 & dp=$!
	# 0-250 ms: covers seizing, injection, the page copy, the writing and
	# sometimes the end (then the snapshot must be complete and valid)
	delay=$(printf '0.%03d' $((RANDOM % 250)))
	sleep "$delay"
	kill -9 "$dp" 2>/dev/null && killed=$((killed + 1))
	wait "$dp" 2>/dev/null
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

# Deterministic: the dumper dies (FP_DUMP_TEST_CRASH) just before the N-th
# resume of an injected syscall, with a thread pointed at the injection
# trampoline. Points 1-2 and the last two are the creation and removal of the
# trampoline page itself (a known window of two syscalls, not tested here).
TH=$T/ct_threads; [[ -x $TH ]] || TH=$T/dump_threads
start_ct th "$TH"
m=0
for crash in 3 4 5 9 16 17 40 41 80 81 120 121; do
	FP_DUMP_TEST_CRASH=$crash "$FP" dump -R -t "$PID" -D "$WORK/c$crash" --compress none >/dev/null 2>&1
	alive "$PID" || fail "crash point $crash: the target died"
	[[ ! -e $WORK/c$crash ]] || fail "crash point $crash: a snapshot directory appeared"
	ct_verify th $((++m))
done
echo ok
