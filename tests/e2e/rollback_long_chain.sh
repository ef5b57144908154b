# Rollbacks in place within a chain longer than the 16 levels a chain
# reader used to keep open: 40 incremental snapshots of ct_grow (8 heap
# pages rewritten between them), then rollbacks to the newest, to one in
# the middle, back up to the newest and to the first, each in place and
# each followed by the target's check of every page. SNAP's pages come
# from many levels at once here (batched and mapped reads over the chain,
# each next page's run found from the last), and the path between the
# tracking's snapshot and SNAP runs both ways.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/long.st
grow_session lc --mib=16 --write-pages=8
for i in $(seq 1 40); do
	ct_verify "$st" "$pid" >/dev/null || fail "verification $i: $(tail -n 2 "$st")"
	snap_json lc "s$i" "$WORK/s$i.json"
	((i == 1)) || [[ $(json_field "$WORK/s$i.json" full) == False ]] || fail "s$i is not incremental"
done

# rollback_to SNAP N: in place, then verification N (SNAP was taken after
# verification N-1) must pass and take the next step
rollback_to() {
	"$FP" restore lc "$1" --json >"$WORK/r.json" || fail "restore $1: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "$1: not in place: $(json_field "$WORK/r.json" why)"
	[[ $(session_field lc target_pid) == "$pid" ]] || fail "$1: the target was replaced"
	local line
	line=$(ct_verify "$st" "$pid") || fail "after the rollback to $1: $line"
	[[ $line == "verify $2 ok"* ]] || fail "after the rollback to $1: expected verification $2: $line"
	echo "$1: rolled back in place ($(json_field "$WORK/r.json" pages) pages), every page checked"
}
ct_verify "$st" "$pid" >/dev/null || fail "verification 41"
rollback_to s40 41
rollback_to s20 21
ct_verify "$st" "$pid" >/dev/null || fail "verification 22"
rollback_to s40 41
rollback_to s2 3
rollback_to s39 40
"$FP" stop --kill lc >/dev/null 2>&1
echo ok
