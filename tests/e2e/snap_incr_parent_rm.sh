# The write tracking's parent snapshot removed (snap, rm, snap: an agent's
# loop that keeps only the newest): the next snapshot is full and says why,
# but keeps the tracking (no new pre-copy, which costs a stop and an
# injection); the one after is incremental against it, and both restore
# with the target's self-check passing. A restore after the removal of the
# tracking's snapshot still goes back in place.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/grow.st
grow_session pr --mib=8 --write-pages=4

snap_json pr r1 "$WORK/r1.json"
ct_verify "$st" "$pid" >/dev/null || fail "verification 1"
snap_json pr r2 "$WORK/r2.json"
[[ $(json_field "$WORK/r2.json" full) == False ]] || fail "r2 is not incremental: $(cat "$WORK/r2.json")"
"$FP" rm pr r2 || fail "rm r2"
"$FP" rm pr r1 || fail "rm r1"
ct_verify "$st" "$pid" >/dev/null || fail "verification 2"
snap_json pr r3 "$WORK/r3.json"
[[ $(json_field "$WORK/r3.json" full) == True ]] || fail "r3 (its parent removed) is not full: $(cat "$WORK/r3.json")"
why=$(json_field "$WORK/r3.json" why)
[[ $why == *removed* ]] || fail "the full r3 says: '$why'"
read -r pr pa < <(pagemap_pages "$S/r3")
((pa == 0 && pr >= 2048)) || fail "r3's pagemap: $pr present, $pa parent"
[[ ! -e $S/r3/parent ]] || fail "the full r3 has a parent link"
grep -q "pre-copy done" "$S/r3/dump.log" && fail "r3 took the write tracking anew: $(cat "$S/r3/dump.log")"

ct_verify "$st" "$pid" >/dev/null || fail "verification 3"
snap_json pr r4 "$WORK/r4.json"
[[ $(json_field "$WORK/r4.json" full) == False ]] || fail "r4 is not incremental: $(cat "$WORK/r4.json")"
read -r pr pa < <(pagemap_pages "$S/r4")
((pr * 10 < pa)) || fail "r4 holds $pr pages, $pa in its parent"

for s in r4 r3; do
	"$FP" restore pr "$s" >/dev/null || fail "restore $s"
	pid=$(session_field pr target_pid)
	track_pid "$pid"
	want=$([[ $s == r4 ]] && echo 4 || echo 3)
	line=$(ct_verify "$st" "$pid") || fail "after restoring $s: $line"
	[[ $line == "verify $want ok"* ]] || fail "restored $s answered '$line'"
done
# The tracking's snapshot removed before a restore (snap r5, rm r5,
# restore r4): which pages differ is not known, and a small SNAP goes back
# in place all the same, every page of it written back.
ct_verify "$st" "$pid" >/dev/null || fail "verification after the restores"
snap_json pr r5 "$WORK/r5.json"
ct_verify "$st" "$pid" >/dev/null || fail "verification after r5"
"$FP" rm pr r5 || fail "rm r5"
"$FP" restore pr r4 --json >"$WORK/back.json" || fail "restore r4 after rm r5: $(cat "$WORK/back.json")"
[[ $(json_field "$WORK/back.json" in_place) == True ]] || fail "not in place: $(cat "$WORK/back.json")"
[[ $(session_field pr target_pid) == "$pid" ]] || fail "the process was replaced"
line=$(ct_verify "$st" "$pid") || fail "after restoring r4 after rm r5: $line"
[[ $line == "verify 4 ok"* ]] || fail "r4 restored after rm r5 answered '$line'"
"$FP" stop --kill pr
echo "r3: $why"
echo ok
