# Incremental snapshots whose written pages are copied before the stop
# (dump_incr_precopy.c: found and protected again, THEN copied, while the
# process runs; the stop reads only what was written since). ct_churn's
# worker writes heap pages, overwrites, zaps (MADV_DONTNEED), unmaps and
# remaps, and moves (mremap) its slots without pause; the test widens both
# windows of the pre-copy (FORKPOINT_FAULT: 40 ms between the protection
# and the copy, 20 ms between the copy and the stop), so the worker surely
# does all of that in each. Every snapshot, restored in place, must pass the
# target's byte-for-byte replay check: a page taken from a copy older than
# its last write, or a copied page kept though it was zapped or moved
# before the stop, shows as a mismatch. (With the copy made before the
# protection, a page written between the two keeps a stale copy under a
# bit that says "unchanged": this test fails then.) Then the same with
# FP_DUMP_NO_PRECOPY_WRITTEN=1 (the stop reads every written page).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

run_session() { # NAME [ENV...]
	local name=$1
	shift
	env "$@" FORKPOINT_FAULT=snap-precopy-gap-40-ms,snap-precopy-wait-20-ms \
		"$FP" run --detach --name "$name" -- "$T/ct_churn" "$WORK/$name.st" --mib=2 >/dev/null || fail "run $name"
	track_pid "$(session_field "$name" helper_pid)"
	wait_for 20 grep -q '^ready' "$WORK/$name.st" || fail "target not ready: $(cat "$WORK/$name.st")"
	track_pid "$(session_field "$name" target_pid)"
}

snap_incr() { # SESSION NAME: a snapshot that must be incremental
	snap_json "$1" "$2" "$WORK/$2.json"
	[[ $(json_field "$WORK/$2.json" full) == False ]] || fail "$2 is not incremental: $(cat "$WORK/$2.json")"
}

run_session pre
S=$FORKPOINT_HOME/sessions/pre/snapshots
n=8
snap_json pre s1 "$WORK/s1.json"
for i in $(seq 2 $n); do
	snap_incr pre "s$i"
	got=$(sed -n 's/.* pages read while stopped (written or new), \([0-9][0-9]*\) copied before the stop.*/\1/p' "$S/s$i/dump.log")
	((got > 0)) || fail "s$i: no page taken from the copy before the stop: $(grep -E 'copied|read while' "$S/s$i/dump.log")"
	ms=$(sed -n 's/.* copied before the stop, \([0-9]*\)\.[0-9]* ms in all.*/\1/p' "$S/s$i/dump.log")
	((ms >= 40)) || fail "s$i: the pre-copy's window was not widened (FORKPOINT_FAULT): $(grep 'in all' "$S/s$i/dump.log")"
done
for s in "s$n" "s$((n - 1))" s3 s2 "s$n"; do
	restore_check pre "$s" "$WORK/pre.st"
done
"$FP" stop pre

run_session old FP_DUMP_NO_PRECOPY_WRITTEN=1
S=$FORKPOINT_HOME/sessions/old/snapshots
snap_json old o1 "$WORK/o1.json"
for i in 2 3 4; do
	snap_incr old "o$i"
	grep -q ' 0 copied before the stop' "$S/o$i/dump.log" ||
		fail "o$i: pages copied before the stop though FP_DUMP_NO_PRECOPY_WRITTEN=1: $(grep 'read while' "$S/o$i/dump.log")"
done
for s in o4 o2; do
	restore_check old "$s" "$WORK/old.st"
done
"$FP" stop old
echo ok
