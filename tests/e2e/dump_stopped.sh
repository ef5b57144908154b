# A process stopped by job control (SIGSTOP) is dumped as stopped (CRIU's
# TASK_STOPPED, 3; Debian 12's crit prints it as "Zombie") and comes back
# stopped; SIGCONT then lets it run on with its state intact. A dump with
# --leave-running leaves the original stopped.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
state() { awk '{print $3}' "/proc/$1/stat"; }
stopped() { [[ $(state "$1") == T ]]; }

start_ct st "$T/ct_heap" --mib=4
ct_verify st 1
kill -STOP "$PID"
wait_for 10 stopped "$PID" || fail "the target did not stop"
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
stopped "$PID" || fail "dump -R let a stopped process run (state $(state "$PID"))"
crit decode -i "$WORK/r/core-$PID.img" --pretty | grep -q '"task_state": "Zombie"' ||
	fail "the image does not say stopped (3): $(crit decode -i "$WORK/r/core-$PID.img" --pretty | grep task_state)"
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
restored() { # WHAT N
	wait_for 10 stopped "$PID" || fail "$1: the restored process is not stopped (state $(state "$PID"))"
	kill -CONT "$PID"
	ct_verify st "$2"
}
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "native restore"
restored "native restore" 2
st_again() {
	if [[ $1 == "criu restore" ]]; then
		echo "ready $PID" >"$WORK/st.st" # the image answers verification 2 again
		restored "$1" 2
		kill -STOP "$PID" # for CRIU's dump
		wait_for 10 stopped "$PID" || fail "no stop"
	else
		restored "$1" 3
	fi
}
criu_both_ways "$WORK/d" st_again
echo ok
