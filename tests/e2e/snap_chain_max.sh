# A session's chain of incremental snapshots stops growing at
# FORKPOINT_CHAIN_MAX levels (a chain deeper than the readers' 4,096 could
# be written but never restored). With a bound of 4: s1 is full (the
# first), s2-s4 build on it, s5 holds every page again and says why, s6
# builds on s5. A rollback in place to s3 crosses the cut (the two chains
# share no snapshot, so every page either holds is compared), then s7
# builds on s3 (its chain counted from the links: 4 levels) and s8 is full
# again. Every rollback is followed by the target's check of every page,
# and the last snapshot restores in full with its check passing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/grow.st
export FORKPOINT_CHAIN_MAX=4 # the session helper's, for its whole life
grow_session cm --mib=16 --write-pages=8
unset FORKPOINT_CHAIN_MAX

snap_n() { # snap_n NAME: after a verification, snap NAME into $WORK/NAME.json
	ct_verify "$st" "$pid" >/dev/null || fail "verification before $1: $(tail -n 2 "$st")"
	snap_json cm "$1" "$WORK/$1.json"
}
full() { json_field "$WORK/$1.json" full; }
for i in 1 2 3 4 5 6; do snap_n "s$i"; done
[[ $(full s1) == True ]] || fail "s1 (the first) is not full"
for s in s2 s3 s4 s6; do
	[[ $(full $s) == False ]] || fail "$s is full: $(json_field "$WORK/$s.json" why)"
done
[[ $(full s5) == True ]] || fail "s5 (on a chain of 4) is not full"
why=$(json_field "$WORK/s5.json" why)
[[ $why == *"is 4 deep (FORKPOINT_CHAIN_MAX 4)"* ]] || fail "s5 says: $why"
[[ ! -e $S/s5/parent ]] || fail "s5 has a parent link: $(readlink "$S/s5/parent")"
[[ $(readlink "$S/s6/parent") == ../s5 ]] || fail "s6's parent: $(readlink "$S/s6/parent")"
echo "s5: $why"

# rollback_to SNAP N: in place, then verification N must pass
rollback_to() {
	"$FP" restore cm "$1" --json >"$WORK/r.json" || fail "restore $1: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "$1: not in place: $(json_field "$WORK/r.json" why)"
	local line
	line=$(ct_verify "$st" "$pid") || fail "after the rollback to $1: $line"
	[[ $line == "verify $2 ok"* ]] || fail "after the rollback to $1: expected verification $2: $line"
	echo "$1: rolled back in place ($(json_field "$WORK/r.json" pages) pages), every page checked"
}
ct_verify "$st" "$pid" >/dev/null || fail "verification 7 (after s6)"
rollback_to s3 4 # s3 was taken after verification 3
snap_n s7
[[ $(full s7) == False ]] || fail "s7 (on s3, a chain of 3) is full: $(json_field "$WORK/s7.json" why)"
[[ $(readlink "$S/s7/parent") == ../s3 ]] || fail "s7's parent: $(readlink "$S/s7/parent")"
snap_n s8
[[ $(full s8) == True ]] || fail "s8 (on s7, a chain of 4) is not full"
ct_verify "$st" "$pid" >/dev/null || fail "verification after s8"
rollback_to s6 7
rollback_to s7 6

# the newest member restores in full (new processes) with its check passing
FORKPOINT_FAULT=rollback-full "$FP" restore cm s7 --json >"$WORK/f.json" || fail "full restore of s7: $(cat "$WORK/f.json")"
pid=$(session_field cm target_pid)
line=$(ct_verify "$st" "$pid") || fail "after the full restore of s7: $line"
[[ $line == "verify 6 ok"* ]] || fail "after the full restore of s7: $line"
"$FP" stop --kill cm >/dev/null 2>&1
echo ok
