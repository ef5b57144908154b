# Incremental snapshots see new memory: between two snapshots the target
# moves a mapping onto an address its parent snapshot had other data at
# (mremap MREMAP_FIXED), grows a mapping with mremap, maps a new region and
# grows its brk heap. Every page of those ranges must be present in the
# second snapshot (none left to the parent), and the session restored from
# it passes the target's self-check of every byte. Under the shim the new
# mappings are registered from its change log (dump.log says so).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/grow.st
grow_session mp --mib=8 --write-pages=4 --grow

snap_json mp a "$WORK/a.json"
for n in 1 2; do
	ct_verify "$st" "$pid" >/dev/null || fail "verification $n: $(tail -n 2 "$st")"
	grep -q '^info grown ' "$st" || fail "the target reported no growth"
	grep '^info grown ' "$st" >"$WORK/grown$n"
	snap_json mp "b$n" "$WORK/b$n.json"
done

(cd "$WORK" && python3 - "$S" "$WORK" <<'PY') || fail "new memory left to the parent"
import json, sys, pagemap
S, W = sys.argv[1], sys.argv[2]
for n, prev in ((1, "a"), (2, "b1")):
    d = json.load(open(f"{W}/b{n}.json"))
    assert not d["full"] and d["pages_parent"] > 0, d
    ents = pagemap.entries(f"{S}/b{n}")
    # the ranges grown by this verification (the file holds all so far)
    grown = [l.split() for l in open(f"{W}/grown{n}")]
    if n == 2:
        grown = grown[len(open(f"{W}/grown1").readlines()):]
    assert grown, "nothing grown"
    for _, _, kind, a, l in grown:
        a, l = int(a, 16), int(l, 16)
        for page in range(a, a + l, 4096):
            fl = [f for v, k, f in ents if v <= page < v + k * 4096]
            assert fl == [4], f"b{n}: page {page:#x} of the {kind} range {a:#x}+{l:#x} has flags {fl}"
    print(f"b{n}: {len(grown)} grown ranges all present; {d['pages']} pages written, {d['pages_parent']} in the parent")
PY

# Under the shim the new mappings were registered for write tracking from
# its change log, not from a walk of /proc/PID/maps (issue 16), and the
# check against /proc after each stop found nothing the log had missed.
for n in 1 2; do
	log=$S/b$n/dump.log
	grep -q "mappings registered from the shim's change log" "$log" ||
		fail "b$n: new mappings not registered from the shim's log: $(grep -i 'registered\|trackable' "$log")"
	! grep -q "neither tracked nor in the shim's log" "$log" || fail "b$n: the log missed a mapping: $(grep trackable "$log")"
done
grep -h "registered from" "$S"/b*/dump.log
# The sleeping target was stopped and resumed once before each incremental
# stop (the warm-up; README "Incremental snapshots"), and went on to pass
# its next verification above and its restores below.
for n in 1 2; do
	grep -Eq "warmed before the stop: 1 process\(es\), [1-9][0-9]* thread\(s\) stopped and resumed .*, [1-9][0-9]* asleep again" \
		"$S/b$n/dump.log" || fail "b$n: no warm-up before the stop: $(grep -i warm "$S/b$n/dump.log")"
done

# Restored from b2 the target checks X at Y's old address, the grown
# regions and the heap: verification 3.
"$FP" restore mp b2 --json >"$WORK/r.json" || fail "restore b2: $(cat "$WORK/r.json")"
pid=$(session_field mp target_pid)
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "after restoring b2: $line"
[[ $line == "verify 3 ok"* ]] || fail "restored b2 answered '$line'"
# and back to b1, which was taken before the second growth
"$FP" restore mp b1 >/dev/null || fail "restore b1"
pid=$(session_field mp target_pid)
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "after restoring b1: $line"
[[ $line == "verify 2 ok"* ]] || fail "restored b1 answered '$line'"
"$FP" stop --kill mp
echo ok
