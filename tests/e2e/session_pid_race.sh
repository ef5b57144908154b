# A session's full restore cannot lose the session to a taken pid
# (session/session_pidns.c): between the kill of the live processes and
# the restore, an unrelated process takes the target's pid (pid_taker,
# clone3 set_tid), at a pause the helper makes for the test
# (FORKPOINT_FAULT=session-pause-before-restore). Before, both the
# snapshot's restore and the roll-back failed and the session ended.
#   - the snapshot's restore: the session ends in SNAP's state, in a pid
#     namespace of its own where the target has its pid and tids back;
#     snapshots taken there restore there again;
#   - the roll-back (the snapshot's restore fails on purpose): the session
#     ends in its state from before, in a namespace of its own likewise.
#   - an ended session revived while its pid is taken moves likewise;
#   - a session with a workspace moves and runs on the snapshot's files;
#   - a shell session moves, and `exec` still reaches its bash.
# The outsider is never touched. No sleeps: the test waits for the pause's
# file and releases the helper with another.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (clone3 set_tid, pid namespaces)"; exit 77; }

start() { # NAME FAULTS [RUN OPTIONS]: a ct_threads session (pids checked at verify)
	FORKPOINT_FAULT=rollback-full,$2 "$FP" run --detach --name "$1" "${@:3}" -- "$T/ct_threads" "$WORK/$1.st" --same-pid >/dev/null ||
		fail "run $1"
	track_pid "$(session_field "$1" helper_pid)"
	wait_for 20 grep -q '^ready' "$WORK/$1.st" || fail "$1 not ready"
	spid=$(session_field "$1" target_pid); track_pid "$spid"
	"$FP" snap "$1" s0 >/dev/null || fail "snap $1"
	v=$(ct_verify "$WORK/$1.st" "$spid") || fail "$1 verify 1: $v"
	sdir=$FORKPOINT_HOME/sessions/$1
}
# restore NAME SNAP in the background; at the pause, an outsider takes pid
# $spid. Sets out (stdout+stderr), rrc (exit status), taker.
restore_racing() { # NAME SNAP
	"$FP" restore "$1" "$2" >"$WORK/$1.out" 2>&1 &
	local r=$!
	wait_for 60 test -e "$sdir/session-pause-before-restore.paused" || fail "$1: the helper never paused"
	[[ ! -e /proc/$spid ]] || fail "$1: pid $spid still taken at the pause (the old target lives)"
	taker=$("$T/pid_taker" "$spid") || fail "$1: could not take the freed pid $spid"
	track_pid "$taker"
	[[ $taker == "$spid" ]] || fail "$1: pid_taker got $taker"
	touch "$sdir/session-pause-before-restore.go"
	wait "$r"; rrc=$?
	out=$(cat "$WORK/$1.out")
}
in_own_ns() { # NAME WHY: the session's target runs in a namespace, as $spid there
	npid=$(session_field "$1" target_pid)
	track_pid "$npid"
	[[ $npid != "$spid" && -d /proc/$npid ]] || fail "$2: target $npid"
	grep -q "^NSpid:[[:space:]]*$npid[[:space:]]*$spid\$" "/proc/$npid/status" ||
		fail "$2: NSpid of $npid: $(grep NSpid "/proc/$npid/status")"
	[[ $(session_field "$1" state) == running ]] || fail "$2: session state $(session_field "$1" state)"
	[[ $(ls "/proc/$npid/task" | wc -l) == 9 ]] || fail "$2: thread count $(ls "/proc/$npid/task" | wc -l)"
	grep -q '^State:.*S' "/proc/$taker/status" || fail "$2: the outsider $taker was touched"
}

# --- the snapshot's restore meets the taken pid -------------------------
start sr session-pause-before-restore
restore_racing sr s0
((rrc == 0)) || fail "restore with a pid taken meanwhile failed ($rrc): $out"
[[ $out == *"pid namespace of its own"* ]] || fail "no note of the move: $out"
in_own_ns sr "snapshot's restore"
v=$(ct_verify "$WORK/sr.st" "$npid") || fail "after the move: $v"
[[ $v == "verify 1 ok pid=$spid "* ]] || fail "not SNAP's state (or not its pid) after the move: $v"
# The session goes on there: a snapshot records the pids inside, and
# restores inside (no outside process can take a pid there).
"$FP" snap sr s1 >/dev/null || fail "snap in the namespace"
v=$(ct_verify "$WORK/sr.st" "$npid") || fail "verify after s1: $v"
[[ $v == "verify 2 ok pid=$spid "* ]] || fail "verify after s1: $v"
out=$("$FP" restore sr s1 2>&1) || fail "restore s1 in the namespace: $out"
npid2=$(session_field sr target_pid); track_pid "$npid2"
grep -q "^NSpid:[[:space:]]*$npid2[[:space:]]*$spid\$" "/proc/$npid2/status" ||
	fail "s1's restore: NSpid of $npid2: $(grep NSpid "/proc/$npid2/status")"
v=$(ct_verify "$WORK/sr.st" "$npid2") || fail "after restoring s1: $v"
[[ $v == "verify 2 ok pid=$spid "* ]] || fail "not s1's state after its restore: $v"
"$FP" stop sr >/dev/null || fail "stop sr"
wait_for 20 test ! -e "/proc/$npid2" || fail "the namespace's target outlived stop"
[[ -d /proc/$taker ]] || fail "stop killed the outsider"
kill -9 "$taker"

# --- the roll-back meets the taken pid ----------------------------------
start rb session-restore,session-pause-before-restore
restore_racing rb s0
((rrc != 0)) || fail "a restore failing on purpose succeeded: $out"
[[ $out == *"back in its state from before the restore, in a pid namespace of its own"* ]] ||
	fail "roll-back message: $out"
in_own_ns rb "roll-back"
v=$(ct_verify "$WORK/rb.st" "$npid") || fail "after the roll-back: $v"
[[ $v == "verify 2 ok pid=$spid "* ]] || fail "not the state from before after the roll-back: $v"
"$FP" stop rb >/dev/null || fail "stop rb"
kill -9 "$taker"


# --- an ended session revived while its pid is another process's ----------
start rv none
"$FP" stop rv >/dev/null || fail "stop rv"
wait_for 20 test ! -e "/proc/$spid" || fail "rv's target outlived stop"
taker=$("$T/pid_taker" "$spid") || fail "could not take pid $spid"
track_pid "$taker"
out=$("$FP" restore rv s0 2>&1) || fail "revive with its pid taken: $out"
in_own_ns rv "revive"
[[ $out == "$npid" ]] || fail "revive printed $out, the target is $npid"
v=$(ct_verify "$WORK/rv.st" "$npid") || fail "after the revive: $v"
[[ $v == "verify 1 ok pid=$spid "* ]] || fail "not SNAP's state after the revive: $v"
"$FP" stop rv >/dev/null || fail "stop rv"
kill -9 "$taker"

# --- a session with a workspace moves, on the snapshot's files ----------
wd=$WORK/wd; mkdir "$wd"; echo before >"$wd/f"
start ws session-pause-before-restore --workdir "$wd"
"$FP" rm ws s0 >/dev/null || fail "rm ws s0"
echo snap >"/proc/$spid/root$wd/f" || fail "write in the workspace"
"$FP" snap ws s0 >/dev/null || fail "snap ws"
echo after >"/proc/$spid/root$wd/f"
restore_racing ws s0
((rrc == 0)) || fail "workspace session: restore with a pid taken meanwhile failed ($rrc): $out"
in_own_ns ws "workspace session"
[[ $(cat "/proc/$npid/root$wd/f") == snap ]] || fail "the moved session sees $(cat "/proc/$npid/root$wd/f"), not the snapshot's file"
[[ $(cat "$wd/f") == before ]] || fail "the workspace's directory itself was written"
v=$(ct_verify "$WORK/ws.st" "$npid") || fail "workspace session after the move: $v"
"$FP" stop ws >/dev/null || fail "stop ws"
kill -9 "$taker"
# --- a shell session moves, and exec still reaches its bash -------------
# exec types into the shell, which reads the helper's pipes through
# /proc/HELPER/fd: in the namespace, that is its own /proc and pid 1.
FORKPOINT_FAULT=rollback-full "$FP" run --shell --name sh >/dev/null || fail "run --shell"
track_pid "$(session_field sh helper_pid)"
bpid=$(session_field sh target_pid); track_pid "$bpid"
"$FP" exec sh -c "sleep 1000 & echo \$! >$WORK/shkid" || fail "exec in the shell"
kid=$(cat "$WORK/shkid"); track_pid "$kid"
"$FP" snap sh s0 >/dev/null || fail "snap sh"
kill -9 "$kid"; wait_for 15 test ! -e "/proc/$kid" || fail "the shell's job $kid not reaped"
taker=$("$T/pid_taker" "$kid") || fail "could not take pid $kid"
track_pid "$taker"
out=$("$FP" restore sh s0 2>&1) || fail "restore of the shell session: $out"
[[ $out == *"pid namespace of its own"* ]] || fail "the shell session did not move: $out"
nb=$(session_field sh target_pid); track_pid "$nb"
grep -q "^NSpid:[[:space:]]*$nb[[:space:]]*$bpid\$" "/proc/$nb/status" ||
	fail "the shell is not $bpid in a namespace: $(grep NSpid "/proc/$nb/status" 2>&1)"
j=$("$FP" exec sh -c 'echo in-ns $$; jobs' 2>&1) || fail "exec after the move: $j"
[[ $j == *"in-ns $bpid"* && $j == *Running*"sleep 1000"* ]] || fail "exec after the move: $j"
grep -q '^State:.*S' "/proc/$taker/status" || fail "the outsider $taker was touched"
"$FP" stop sh >/dev/null || fail "stop sh"
kill -9 "$taker"
echo ok
