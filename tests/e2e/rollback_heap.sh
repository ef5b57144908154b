# Rollback in place of a process whose brk heap grew since SNAP, twice to
# the same snapshot. The heap's part that the write tracking registered and
# its growth beside it are two [heap] mappings in /proc/PID/maps; the
# rollback must take them as one heap (it used to refuse in place: "the heap
# starts elsewhere than in SNAP"). After each rollback the target checks
# every byte of the state it had at SNAP, and the heap's end is SNAP's.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/grow.st
grow_session hp --mib=8 --write-pages=4 --grow

heap_end() { awk '/\[heap\]/ { e = $1 } END { sub(/.*-/, "", e); print e }' "/proc/$pid/maps"; }

ct_verify "$st" "$pid" >/dev/null || fail "verification 1: $(tail -n 2 "$st")"
snap_json hp s1 "$WORK/s1.json"
end1=$(heap_end)
for round in 1 2; do
	# verification 2 checks state 1, then grows the heap (sbrk), maps and
	# moves memory
	line=$(ct_verify "$st" "$pid") || fail "round $round: $line"
	[[ $line == "verify 2 ok"* ]] || fail "round $round: expected verification 2: $line"
	n=$(grep -c '\[heap\]' "/proc/$pid/maps")
	((n >= 2)) || echo "note: the heap is $n mapping(s) here (expected 2: tracked part and growth)"
	[[ $(heap_end) != "$end1" ]] || fail "round $round: the heap did not grow"
	"$FP" restore hp s1 --json >"$WORK/r$round.json" || fail "restore s1: $(cat "$WORK/r$round.json")"
	[[ $(json_field "$WORK/r$round.json" in_place) == True ]] ||
		fail "round $round: not rolled back in place: $(json_field "$WORK/r$round.json" why)"
	[[ $(session_field hp target_pid) == "$pid" ]] || fail "round $round: the target was replaced"
	[[ $(heap_end) == "$end1" ]] || fail "round $round: the heap ends at $(heap_end), SNAP's at $end1"
done
# and the state after the rollback is state 1: verification 2 again
line=$(ct_verify "$st" "$pid") || fail "after the rollbacks: $line"
[[ $line == "verify 2 ok"* ]] || fail "after the rollbacks: expected verification 2: $line"
"$FP" stop --kill hp >/dev/null 2>&1
echo ok
