# A rollback in place that fails half way (FORKPOINT_FAULT: after N pages
# were written back) leaves the session in its state from before: the
# mappings it had removed and re-made, the pages it wrote, offsets, fds
# and registers all come back; the target proves it. The next rollback,
# without the fault, is in place and complete.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
st=$WORK/status
FORKPOINT_FAULT=rollback-after-40-pages "$FP" run --detach --name rf -- "$T/ct_explore" "$st" --mib=16 >/dev/null ||
	fail "run"
track_pid "$(session_field rf helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field rf target_pid)
track_pid "$pid"


step 1
"$FP" snap rf s1 >/dev/null || fail "snap s1"
step 4 # areas made, protected and removed; ~4% of the pages written
at 5
err=$("$FP" restore rf s1 --json 2>&1) && fail "a rollback failing on purpose succeeded: $err"
[[ $err == *"failing on purpose"* && $err == *"back in its state from before"* ]] || fail "message: $err"
[[ $(session_field rf target_pid) == "$pid" ]] || fail "the failed rollback changed the pid"
at 5 # every page, area, offset and thread as before the rollback
step 1
at 6
"$FP" restore rf s1 --json >"$WORK/r.json" || fail "restore without the fault: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "not in place: $(cat "$WORK/r.json")"
at 1
"$FP" stop rf
echo ok
