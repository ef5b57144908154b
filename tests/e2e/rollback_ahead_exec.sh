# An exec under a pass of the read ahead that protects the written pages
# again (FP_ROLLBACK_AHEAD_PROTECT=1, helper/session/rollback_ahead.c):
# the pass's walk finds the process's old memory gone. That is no failure
# of the write tracking: the next restore is a full one that says the
# process ran exec (as without the pass), and the restored processes are
# SNAP's. The pass is held with the pagemap open
# (FORKPOINT_FAULT=rollback-ahead-protect) while the target execs.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
st=$WORK/status
D=$FORKPOINT_HOME/sessions/ax
H=$D/rollback-ahead-protect

FP_ROLLBACK_AHEAD_PROTECT=1 FORKPOINT_FAULT=rollback-ahead-protect \
	"$FP" run --detach --name ax -- "$T/ct_explore" "$st" --mib=8 >/dev/null || fail "run"
track_pid "$(session_field ax helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field ax target_pid)
track_pid "$pid"

step 1
"$FP" snap ax s1 >/dev/null || fail "snap s1"
step 1
ahead_hold # a pass at rest, about to protect the target's pages again
kill -RTMIN "$pid"
wait_for 20 bash -c "grep -q sleep /proc/$pid/cmdline" || fail "no exec"
rm -f "$H.paused"
touch "$H.go"
"$FP" restore ax s1 --json >"$WORK/r.json" || fail "restore after the exec: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == False ]] || fail "in place after an exec: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" why) == *exec* ]] || fail "the restore does not say the process ran exec: $(cat "$WORK/r.json")"
pid=$(session_field ax target_pid)
track_pid "$pid"
at 1
"$FP" stop ax
echo ok
