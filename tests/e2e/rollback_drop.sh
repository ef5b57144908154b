# Rollback in place of memory whose pages come and go without being
# written: ct_grow --drop, between SNAP and each rollback, empties a whole
# 2 MiB block with MADV_DONTNEED (the kernel frees its page table, so no
# page table entry is left to say anything), single pages of another,
# writes pages where there were none and reads others (the zero page).
# After every rollback the target checks each page of that area against
# its own model (pattern or zeros), and the rollback must not have filled
# the never-touched half of the area with pages (its resident size).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/drop.st
grow_session dr --mib=4 --write-pages=2 --drop
read -r _ _ daddr dlen < <(grep '^info drop ' "$st")
[[ -n $daddr ]] || fail "the target reported no drop area: $(cat "$st")"

# resident KiB of the mapping that holds the drop area
drop_rss() {
	python3 - "/proc/$pid/smaps" "$daddr" <<'PY'
import sys
a, inside = int(sys.argv[2], 16), False
for l in open(sys.argv[1]):
    f = l.split()
    if "-" in f[0] and len(f) > 4 and all(c in "0123456789abcdef-" for c in f[0]):
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        inside = lo <= a < hi
    elif inside and f[0] == "Rss:":
        print(f[1])
        break
PY
}

line=$(ct_verify "$st" "$pid") || fail "verification 1: $line"
snap_json dr s1 "$WORK/s1.json"
rss1=$(drop_rss)
n=2 # the next verification's number
for round in 1 2 3 4; do
	# `round + 1` steps since s1: each drops, writes and reads other blocks
	for ((k = 0; k <= round; k++)); do
		line=$(ct_verify "$st" "$pid") || fail "round $round, verification $n: $line"
		[[ $line == "verify $n ok"* ]] || fail "round $round: expected verification $n: $line"
		n=$((n + 1))
	done
	"$FP" restore dr s1 --json >"$WORK/r$round.json" || fail "restore s1: $(cat "$WORK/r$round.json")"
	[[ $(json_field "$WORK/r$round.json" in_place) == True ]] ||
		fail "round $round: not rolled back in place: $(json_field "$WORK/r$round.json" why)"
	[[ $(session_field dr target_pid) == "$pid" ]] || fail "round $round: the target was replaced"
	# state 1 again: verification 2 checks it (and takes step 2)
	n=2
	rss=$(drop_rss)
	# SNAP's pages are back; pages made since may stay (zeros); the
	# never-touched blocks must not have been filled (8 MiB of them)
	((rss <= rss1 + 256)) || fail "round $round: the drop area holds $rss KiB after the rollback, $rss1 KiB at SNAP"
	echo "round $round: rolled back in place; drop area $rss KiB resident (SNAP: $rss1 KiB)"
done
line=$(ct_verify "$st" "$pid") || fail "after the rollbacks: $line"
[[ $line == "verify 2 ok"* ]] || fail "after the rollbacks: expected verification 2: $line"

# and to a later snapshot, from further on
snap_json dr s2 "$WORK/s2.json"
for n in 3 4 5; do
	line=$(ct_verify "$st" "$pid") || fail "after s2, verification $n: $line"
done
"$FP" restore dr s2 --json >"$WORK/r5.json" || fail "restore s2: $(cat "$WORK/r5.json")"
[[ $(json_field "$WORK/r5.json" in_place) == True ]] || fail "s2: not rolled back in place: $(json_field "$WORK/r5.json" why)"
line=$(ct_verify "$st" "$pid") || fail "after the rollback to s2: $line"
[[ $line == "verify 3 ok"* ]] || fail "after the rollback to s2: expected verification 3: $line"
"$FP" stop --kill dr >/dev/null 2>&1
echo ok
