# A failed session restore never costs the session (helper/session/session_hold.c):
#   - as a user who may not choose pids, the restore is refused while the
#     session runs untouched, and its target still passes its own check with
#     the state it had (not the snapshot's);
#   - a save that fails while the processes are held, or whose image is not
#     proved restorable, lets them go untouched;
#   - a snapshot's restore that fails after the swap brings back the state
#     from before it;
#   - a snapshot whose pid another process took since is restored in a pid
#     namespace of its own (e2e/session_pid_race: taken during the restore).
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (a non-root user is made with su, faults are root's case)"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "no user 'nobody' for the non-root part"; exit 77; }

# --- non-root: refused up front, nothing stopped -------------------------
chmod 711 "$WORK"
nr=$WORK/nr; mkdir -m 700 "$nr"; chown nobody "$nr"
as_nobody() { # COMMAND...: as nobody, with only stdio open (no fd of root's)
	su -s /bin/bash nobody -c 'for f in /proc/$$/fd/*; do f=${f##*/}; ((f > 2)) && eval "exec $f>&-"; done; '"export FORKPOINT_HOME=$nr/home; cd $nr; $*"
}
# rollback-full: a rollback in place needs no right to choose pids and
# would succeed (e2e/rollback_inplace); this part is about the full restore.
as_nobody FORKPOINT_FAULT=rollback-full "$FP" run --detach --name nr -- "$T/ct_threads" "$nr/st" >/dev/null || fail "non-root run"
wait_for 20 grep -q '^ready' "$nr/st" || fail "non-root target not ready: $(cat "$nr/st")"
npid=$(awk '/^ready/{print $2; exit}' "$nr/st"); track_pid "$npid"
nhelper=$(awk '/^PPid:/{print $2}' "/proc/$npid/status"); track_pid "$nhelper"
[[ $(stat -c %U "/proc/$npid") == nobody ]] || fail "the non-root target runs as $(stat -c %U "/proc/$npid")"
as_nobody "$FP" snap nr s0 >/dev/null || fail "non-root snap"
v=$(ct_verify "$nr/st" "$npid") || fail "non-root verify 1: $v"
out=$(as_nobody "$FP" restore nr s0 2>&1) && fail "a non-root session restore succeeded: $out"
[[ $out == *"left as it was"* && $out == *CAP_CHECKPOINT_RESTORE* ]] || fail "non-root restore message: $out"
[[ -d /proc/$npid ]] || fail "the non-root session's target is gone"
grep -q '^State:.*[SR]' "/proc/$npid/status" || fail "target left $(grep State: "/proc/$npid/status")"
v=$(ct_verify "$nr/st" "$npid") || fail "non-root target after the refused restore: $v"
[[ $v == "verify 2 ok"* ]] || fail "the non-root session lost its state: $v"
as_nobody "$FP" ps | grep -q "nr .*running" || fail "non-root session not listed as running: $(as_nobody "$FP" ps)"
as_nobody "$FP" stop nr >/dev/null || fail "non-root stop"

# --- root: the save fails while the processes are held ------------------
start() { # NAME FAULT: a ct_threads session with FORKPOINT_FAULT=FAULT
	FORKPOINT_FAULT=rollback-full,$2 "$FP" run --detach --name "$1" -- "$T/ct_threads" "$WORK/$1.st" >/dev/null || fail "run $1"
	track_pid "$(session_field "$1" helper_pid)"
	wait_for 20 grep -q '^ready' "$WORK/$1.st" || fail "$1 not ready"
	spid=$(session_field "$1" target_pid); track_pid "$spid"
	"$FP" snap "$1" s0 >/dev/null || fail "snap $1"
	v=$(ct_verify "$WORK/$1.st" "$spid") || fail "$1 verify 1: $v"
}
same_as_before() { # NAME WHY
	[[ $(session_field "$1" target_pid) == "$spid" ]] || fail "$2: the session's target changed"
	[[ $(session_field "$1" state) == running ]] || fail "$2: session state $(session_field "$1" state)"
	v=$(ct_verify "$WORK/$1.st" "$spid") || fail "$2: target after the failed restore: $v"
	[[ $v == "verify 2 ok"* ]] || fail "$2: the session is not as it was: $v"
	[[ $(ls "/proc/$spid/task" | wc -l) == 9 ]] || fail "$2: thread count $(ls "/proc/$spid/task" | wc -l)"
}
start fs session-save
out=$("$FP" restore fs s0 2>&1) && fail "a restore with a failing save succeeded"
[[ $out == *"left as it was"* && $out == *FORKPOINT_FAULT* ]] || fail "failing save message: $out"
same_as_before fs "failing save"
"$FP" stop fs >/dev/null

# --- root: the saved state is found unrestorable before the kill ---------
start fc session-save-check
out=$("$FP" restore fc s0 2>&1) && fail "a restore with an unrestorable save succeeded"
[[ $out == *"left as it was"* && $out == *"proved restorable"* ]] || fail "failing save check message: $out"
same_as_before fc "failing save check"
[[ ! -e $FORKPOINT_HOME/sessions/fc/rollback ]] || fail "the unusable saved state was left behind"
"$FP" stop fc >/dev/null

# --- root: the snapshot's restore fails after the swap -------------------
start fr session-restore
out=$("$FP" restore fr s0 2>&1) && fail "a restore failing on purpose succeeded"
[[ $out == *"back in its state from before the restore"* ]] || fail "failing restore message: $out"
same_as_before fr "failing restore"
"$FP" stop fr >/dev/null

# --- root: a pid of the snapshot taken by another process ----------------
# The session's child (a sleep) is in the snapshot; it ends, and an outside
# process is made with its pid (pid_taker), so the snapshot cannot get its
# pids back here: the session moves into a pid namespace of its own, where
# they are free, and the outsider is left alone.
"$FP" run --detach --name pt -- bash -c "sleep 1000 & echo \$! >$WORK/kid; wait; exec sleep 1000" >/dev/null || fail "run pt"
track_pid "$(session_field pt helper_pid)"
wait_for 20 test -s "$WORK/kid" || fail "pt's child not started"
ppid=$(session_field pt target_pid); kid=$(cat "$WORK/kid")
"$FP" snap pt s0 >/dev/null || fail "snap pt"
kill -9 "$kid"; wait_for 15 test ! -e "/proc/$kid" || fail "child $kid not reaped"
outsider=$("$T/pid_taker" "$kid") || fail "could not take pid $kid"
track_pid "$outsider"
out=$("$FP" restore pt s0 2>&1) || fail "restore of a snapshot whose pid $kid is another process's: $out"
[[ $out == *"pid namespace of its own"* ]] || fail "taken pid message: $out"
npid=$(session_field pt target_pid); track_pid "$npid"
grep -q "^NSpid:[[:space:]]*$npid[[:space:]]*$ppid\$" "/proc/$npid/status" ||
	fail "the session's shell is not $ppid in a namespace: $(grep NSpid "/proc/$npid/status" 2>&1)"
nkid=$(cat "/proc/$npid/task/$npid/children"); nkid=${nkid%% }
grep -q "^NSpid:[[:space:]]*$nkid[[:space:]]*$kid\$" "/proc/$nkid/status" ||
	fail "the shell's child is not $kid in the namespace: $(grep NSpid "/proc/$nkid/status" 2>&1)"
grep -q '^State:.*S' "/proc/$outsider/status" || fail "the outsider left $(grep State: "/proc/$outsider/status")"
kill -9 "$outsider"
"$FP" stop --kill pt >/dev/null
echo ok
