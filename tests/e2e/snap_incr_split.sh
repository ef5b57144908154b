# Incremental snapshots of a process big enough that the stop walks its page
# tables on two CPUs (dump_pages.c: a run of mappings of 64 MiB or more is
# walked in pieces by the dumper and its second thread, dump_worker.c, and
# the pieces' regions joined). ct_churn's worker changes its memory without
# pause (a 96 MiB heap, slots overwritten, zapped, moved); every snapshot,
# restored in place, must pass its byte-for-byte replay check, so a page
# lost or doubled where two pieces meet shows as a mismatch.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
(($(nproc) >= 2)) || { echo "one CPU: the walk is not split"; exit 77; }

st=$WORK/churn.st
"$FP" run --detach --name split -- "$T/ct_churn" "$st" --mib=96 >/dev/null || fail "run"
track_pid "$(session_field split helper_pid)"
wait_for 30 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
track_pid "$(session_field split target_pid)"
S=$FORKPOINT_HOME/sessions/split/snapshots

for i in 1 2 3 4 5 6; do
	snap_json split "s$i" "$WORK/s$i.json"
	((i == 1)) && continue
	[[ $(json_field "$WORK/s$i.json" full) == False ]] || fail "s$i is not incremental: $(cat "$WORK/s$i.json")"
	grep -q 'walked on two CPUs' "$S/s$i/dump.log" ||
		fail "s$i: the page walk was not split: $(grep -E 'pages|walk' "$S/s$i/dump.log" | head -n 5)"
done
for s in s6 s4 s2 s6; do
	restore_check split "$s" "$st"
done
"$FP" stop split
echo ok
