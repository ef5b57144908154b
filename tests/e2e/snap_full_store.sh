# A session's first (full) snapshot keeps the pre-copy's file as its page
# store (helper/dump/dump_precopy_store.c): the pages the stop reads are
# copied over their places where they changed, and the hash chain taken
# behind the copy is taken again from the first of them. ct_churn
# --rewrite-only rewrites its 16 slots of 1 MiB without pause while the
# test widens the window between the copy and the stop (FORKPOINT_FAULT,
# 20 ms), so that pages change there. The snapshot is restored in place
# (after a later one) and by `criu restore`: both must pass the target's
# byte-for-byte replay check, which a page left as the pre-copy had it
# fails (a slot holding an earlier round's data), and a wrong chain fails
# the rollback's check of the pages it reads. Then FP_DUMP_PRECOPY_STORE=0:
# the pages are written again after the stop, as before.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/full.st
FORKPOINT_FAULT=snap-precopy-wait-20-ms "$FP" run --detach --name full -- "$T/ct_churn" "$st" --mib=4 \
	--rewrite-only >/dev/null || fail "run"
track_pid "$(session_field full helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field full target_pid)
track_pid "$pid"
S=$FORKPOINT_HOME/sessions/full/snapshots

snap_json full s1 "$WORK/s1.json"
[[ $(json_field "$WORK/s1.json" full) == True ]] || fail "s1 is not full: $(cat "$WORK/s1.json")"
grep -q "the pre-copy's buffer is the page store" "$S/s1/dump.log" ||
	fail "s1's pre-copy did not become its page store: $(grep -h "pre-cop" "$S/s1/dump.log")"
changed=$(sed -n 's/.* \([0-9][0-9]*\) changed there.*/\1/p' "$S/s1/dump.log")
((changed > 0)) || fail "no page changed between the copy and the stop: $(grep -h 'while stopped (' "$S/s1/dump.log")"
snap_json full s2 "$WORK/s2.json"
restore_check full s1 "$st"
"$FP" stop --kill full
wait_for 15 test ! -e "/proc/$pid" || fail "session did not stop"

criu_restore_verify "$S/s1" "$st" "$pid"

st=$WORK/off.st
FP_DUMP_PRECOPY_STORE=0 "$FP" run --detach --name off -- "$T/ct_churn" "$st" --mib=4 --rewrite-only >/dev/null ||
	fail "run off"
track_pid "$(session_field off helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
track_pid "$(session_field off target_pid)"
S=$FORKPOINT_HOME/sessions/off/snapshots
snap_json off o1 "$WORK/o1.json"
snap_json off o2 "$WORK/o2.json"
! grep -q "is the page store" "$S/o1/dump.log" ||
	fail "the pre-copy became the store though FP_DUMP_PRECOPY_STORE=0"
restore_check off o1 "$st"
"$FP" stop --kill off
echo ok
