# forkpoint stop leaves no process behind: children, grandchildren and a
# daemon that left the session with setsid all die, in a plain session and
# in a shell session; the name is free again afterwards.
source "$(dirname "$0")/../lib.sh"
command -v setsid >/dev/null || { echo "no setsid"; exit 77; }

pids=$WORK/pids
# Each process writes its pid; the daemon forks out of a setsid shell that
# exits at once, so it is nobody's child but the subreaper's.
cat >"$WORK/tree.sh" <<EOF
echo \$\$ >>$pids
sh -c 'echo \$\$ >>$pids; sh -c "echo \\\$\\\$ >>$pids; exec sleep 1000" & exec sleep 1001' &
setsid sh -c 'sh -c "echo \\\$\\\$ >>$pids; exec sleep 1002" & exit 0' &
trap '' TERM
while :; do sleep 1; done
EOF

all_gone() { local p; for p in $(cat "$pids"); do [[ -e /proc/$p ]] && return 1; done; return 0; }
ours_alive() { local p; for p in $(cat "$pids"); do [[ -e /proc/$p ]] || return 1; done; }

for round in plain shell; do
	: >"$pids"
	if [[ $round == plain ]]; then
		"$FP" run --detach --name tree -- bash "$WORK/tree.sh" >/dev/null || fail "run"
	else
		"$FP" run --shell --name tree >/dev/null || fail "run --shell"
		"$FP" exec tree -c "bash $WORK/tree.sh >/dev/null 2>&1 & disown" || fail "exec"
	fi
	helper=$(session_field tree helper_pid)
	track_pid "$helper"
	wait_for 20 bash -c "(( \$(wc -l <'$pids') == 4 ))" || fail "$round: tree not started: $(cat "$pids")"
	ours_alive || fail "$round: a process of the tree died early"
	for p in $(cat "$pids"); do track_pid "$p"; done
	# The program ignores SIGTERM: stop must still end everything.
	"$FP" stop tree || fail "$round: stop"
	# Gone, or a zombie its new parent (init) has not reaped yet.
	[[ ! -e /proc/$helper || $(awk '{print $3}' "/proc/$helper/stat" 2>/dev/null) == Z ]] ||
		fail "$round: the helper $helper still runs after stop returned"
	all_gone || fail "$round: processes left after stop: $(for p in $(cat "$pids"); do [[ -e /proc/$p ]] && ps -o pid,ppid,cmd -p "$p" | tail -n1; done)"
	# The name is free again.
	"$FP" run --detach --name tree -- sleep 1000 >/dev/null || fail "$round: the name of a stopped session is still taken"
	track_pid "$(session_field tree helper_pid)"
	"$FP" stop --kill tree || fail "$round: stop --kill"
done

# A stopped session that keeps snapshots says so, and how to free its name.
"$FP" run --detach --name keep -- sleep 1000 >/dev/null || fail "run keep"
track_pid "$(session_field keep helper_pid)"
"$FP" snap keep s1 >/dev/null || fail "snap keep"
"$FP" stop keep || fail "stop keep"
err=$("$FP" run --detach --name keep -- sleep 1000 2>&1) && fail "the name of a session with snapshots was reused"
[[ $err == *"has ended but keeps its snapshots"* ]] || fail "message: $err"
"$FP" rm keep s1 >/dev/null || fail "rm keep s1"
"$FP" run --detach --name keep -- sleep 1000 >/dev/null || fail "the name is not free after its snapshots were deleted"
track_pid "$(session_field keep helper_pid)"
"$FP" stop keep
echo ok
