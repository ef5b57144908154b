# Incremental snapshots of a process big enough that the stop walks its page
# tables on two CPUs (dump_pages.c: a run of mappings of 64 MiB or more is
# walked in pieces by the dumper and its second thread, dump_worker.c, and
# the pieces' regions joined). ct_churn's worker changes its memory without
# pause (a 96 MiB heap, slots overwritten, zapped, moved); every snapshot,
# restored in place, must pass its byte-for-byte replay check, so a page
# lost or doubled where two pieces meet shows as a mismatch. The same
# again with the stop taking the tracked pages from the written ones, which
# walks only those (the default).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
(($(nproc) >= 2)) || { echo "one CPU: the walk is not split"; exit 77; }

# churn NAME LOG-PATTERN WHAT: six snapshots of a new ct_churn session,
# each after the first incremental with LOG-PATTERN in its dump.log, then
# four of them restored in place and checked
churn() {
	st=$WORK/$1.st
	"$FP" run --detach --name "$1" -- "$T/ct_churn" "$st" --mib=96 >/dev/null || fail "run"
	track_pid "$(session_field "$1" helper_pid)"
	wait_for 30 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
	track_pid "$(session_field "$1" target_pid)"
	S=$FORKPOINT_HOME/sessions/$1/snapshots
	for i in 1 2 3 4 5 6; do
		snap_json "$1" "s$i" "$WORK/s$i.json"
		((i == 1)) && continue
		[[ $(json_field "$WORK/s$i.json" full) == False ]] || fail "s$i is not incremental: $(cat "$WORK/s$i.json")"
		grep -q "$2" "$S/s$i/dump.log" ||
			fail "$1: s$i: $3: $(grep -E 'pages|walk' "$S/s$i/dump.log" | head -n 5)"
	done
	for s in s6 s4 s2 s6; do
		restore_check "$1" "$s" "$st"
	done
	"$FP" stop "$1"
	echo "$1: ok"
}
# the walk of every page table entry (FP_DUMP_FAST_WRITTEN=0), split
FP_DUMP_FAST_WRITTEN=0 churn split 'walked on two CPUs' "the page walk was not split"
# and the tracked memory's pages from the written ones (dump_incr_content.c)
churn fast 'pages of its tracked memory from the written ones' "the pages were not taken from the written ones"
echo ok
