# A thread's core facts (clear_child_tid, sigaltstack, pdeath signal; the
# leader's sigactions, itimers, brk, dumpable) are read by one injected
# program per thread that stops on an ignored signal (dump_inject_blob.c),
# or, with FP_DUMP_NO_BLOB=1, call by call. Both ways, ct_threads (each
# thread with its own signal mask and alternate signal stack, a handler for
# SIGUSR2 and SIGTERM, SIGHUP and SIGPIPE ignored) is dumped, restored
# natively and proves every thread's state; the target that a dump leaves
# running (-R) goes on verifying, with nothing of ours left: no injection
# page in its maps, no signal of ours pending. (The dumper killed in the
# middle of the program: e2e/dump_kill9.)
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
TH=$T/ct_threads; [[ -x $TH ]] || fail "no ct_threads"

for way in blob calls; do
	start_ct "t$way" "$TH" --same-pid
	ct_verify "t$way" 1
	nth=$(ls "/proc/$PID/task" | wc -l)
	maps0=$(wc -l <"/proc/$PID/maps")
	env=()
	[[ $way == calls ]] && env=(FP_DUMP_NO_BLOB=1)
	d=$WORK/r$way
	env "${env[@]}" "$FP" dump -R -t "$PID" -D "$d" --compress none >/dev/null || fail "$way: dump -R: $(tail -n 3 "$d.failed.log" 2>/dev/null)"
	runs=$(grep -c 'calls in one run' "$d/dump.log")
	if [[ $way == blob ]]; then
		((runs == nth)) || fail "$way: $runs threads read in one run, the process has $nth: $(grep -E 'one run|facts' "$d/dump.log")"
	else
		((runs == 0)) || fail "$way: FP_DUMP_NO_BLOB=1 still ran the program"
	fi
	# left running: as before, nothing of ours in it
	[[ $(wc -l <"/proc/$PID/maps") == "$maps0" ]] || fail "$way: the dump left a mapping behind"
	for t in /proc/$PID/task/*; do
		[[ $(awk '/^SigPnd/{print $2}' "$t/status") == 0000000000000000 ]] || fail "$way: a signal is left pending in $t"
	done
	[[ $(awk '/^ShdPnd/{print $2}' "/proc/$PID/status") == 0000000000000000 ]] || fail "$way: a signal is left pending"
	ct_verify "t$way" 2
	# and the image: restored natively, every thread checks itself
	"$FP" dump -t "$PID" -D "$WORK/k$way" --compress none >/dev/null || fail "$way: dump"
	wait_gone "$PID"
	out=$("$FP" restore -D "$WORK/k$way" -d --engine native 2>&1) || fail "$way: native restore: $out"
	ct_verify "t$way" 3
	kill -9 "$PID" 2>/dev/null
	wait_gone "$PID"
done
echo ok
