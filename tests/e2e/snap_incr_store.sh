# An incremental snapshot's page store written by a thread while the
# pre-copy copies its pages (helper/dump/dump_incr_store.c), and completed
# after the resume with the pages the stop read again: written over their
# places, the hash chain taken again from the first of them. ct_churn
# --rewrite-only rewrites its 16 slots of 1 MiB without pause, and nothing
# else, so the pages each snapshot holds stay the same ones (the store is
# used) while the test widens the window between the copy and the stop
# (FORKPOINT_FAULT, 20 ms) so that many of them are written again in it
# (the stop's reads must replace the copies in the store). Every snapshot
# restored in place, and the last one by `criu restore`, must pass the
# target's byte-for-byte replay check; a page left as the pre-copy had it
# shows as a slot holding an earlier round's data, and a wrong hash chain
# fails the rollback's check of the pages it reads. Then the same target
# with FP_DUMP_STORE_BESIDE=0: the store is written after the stop, as
# before, and never beside.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/store.st
FORKPOINT_FAULT=snap-precopy-wait-20-ms "$FP" run --detach --name store -- "$T/ct_churn" "$st" --mib=4 \
	--rewrite-only >/dev/null || fail "run"
track_pid "$(session_field store helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field store target_pid)
track_pid "$pid"
S=$FORKPOINT_HOME/sessions/store/snapshots

snap_json store s1 "$WORK/s1.json"
used=0 patched=0
for i in $(seq 2 7); do
	snap_json store "s$i" "$WORK/s$i.json"
	[[ $(json_field "$WORK/s$i.json" full) == False ]] || fail "s$i is not incremental: $(cat "$WORK/s$i.json")"
	line=$(grep 'page store written beside the pre-copy:' "$S/s$i/dump.log") || continue
	used=$((used + 1))
	pieces=$(sed -n 's/.* \([0-9][0-9]*\) piece(s) read at the stop written over their place.*/\1/p' <<<"$line")
	((pieces > 0)) && patched=$((patched + 1))
done
((used >= 4)) || fail "the store written beside was used in $used of 6 snapshots: $(grep -h 'beside' "$S"/s*/dump.log)"
((patched >= 2)) || fail "the stop's reads went over their places in $patched snapshots only: $(grep -h 'beside' "$S"/s*/dump.log)"

for s in s7 s4 s2 s6; do
	restore_check store "$s" "$st"
done
"$FP" stop --kill store
wait_for 15 test ! -e "/proc/$pid" || fail "session did not stop"

criu_restore_verify "$S/s6" "$st" "$pid"

st=$WORK/off.st
FP_DUMP_STORE_BESIDE=0 FORKPOINT_FAULT=snap-precopy-wait-20-ms "$FP" run --detach --name off -- "$T/ct_churn" "$st" \
	--mib=4 --rewrite-only >/dev/null || fail "run off"
track_pid "$(session_field off helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
track_pid "$(session_field off target_pid)"
S=$FORKPOINT_HOME/sessions/off/snapshots
for i in 1 2 3; do
	snap_json off "o$i" "$WORK/o$i.json"
done
! grep -q 'beside' "$S"/o*/dump.log || fail "a store written beside though FP_DUMP_STORE_BESIDE=0: $(grep -h beside "$S"/o*/dump.log)"
restore_check off o2 "$st"
"$FP" stop --kill off
echo ok
