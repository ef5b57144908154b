# A shell session that starts a pipeline every few milliseconds is
# snapshotted and restored 200 times without a failure: children that end
# while the tree is being stopped or read do not fail the snapshot, and the
# shim's short-lived /proc fds are never dumped.
source "$(dirname "$0")/../lib.sh"
ROUNDS=${FP_BUSY_ROUNDS:-200}

"$FP" run --shell --name busy >/dev/null || fail "run --shell"
track_pid "$(session_field busy helper_pid)"
"$FP" exec busy -c "n=0; while :; do echo x | wc -c >/dev/null; n=\$((n+1)); echo \$n >$WORK/count; sleep 0.002; done >/dev/null 2>&1 &" ||
	fail "start the loop"
wait_for 20 test -s "$WORK/count" || fail "the loop does not run"

for i in $(seq 1 "$ROUNDS"); do
	out=$("$FP" snap busy "s$i" 2>&1) || fail "round $i: snap: $out"
	out=$("$FP" restore busy "s$i" 2>&1) || fail "round $i: restore: $out"
	(( i % 20 )) || {
		"$FP" rm busy $(seq -f 's%g' $((i - 19)) "$i") >/dev/null || fail "rm after round $i"
		c0=$(cat "$WORK/count")
		wait_for 20 bash -c "[[ \$(cat '$WORK/count') != '$c0' ]]" || fail "round $i: the loop stopped after the restore"
		j=$("$FP" exec busy -c jobs 2>&1); [[ $j == *Running*"while :"* ]] || fail "round $i: the loop is not a running job: $j"
	}
done

# A process holding /proc/PID/fd of a child that is gone (what the shim
# holds for a moment after a fork) is snapshotted without that fd, so the
# snapshot restores.
cat >"$WORK/holder.py" <<'EOF'
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
fd = os.open("/proc/%d/fd" % pid, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
os.waitpid(pid, 0)
open(sys.argv[1], "w").write("%d\n" % fd)
time.sleep(1000)
EOF
if command -v python3 >/dev/null; then
	"$FP" run --detach --name holder -- python3 "$WORK/holder.py" "$WORK/holder.fd" >/dev/null || fail "run holder"
	track_pid "$(session_field holder helper_pid)"
	wait_for 20 test -s "$WORK/holder.fd" || fail "holder not ready"
	"$FP" snap holder h1 >/dev/null || fail "snap of a process holding a gone child's /proc fd"
	"$FP" restore holder h1 >/dev/null || fail "restore of that snapshot"
	hpid=$(session_field holder target_pid)
	[[ ! -e /proc/$hpid/fd/$(cat "$WORK/holder.fd") ]] || fail "the /proc fd was restored"
	"$FP" stop holder
fi
"$FP" stop busy
echo ok
