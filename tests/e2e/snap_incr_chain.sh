# Incremental snapshots: a chain of 100 snapshots of a session whose target
# rewrites 8 pages between snapshots. After the first (full) one, each holds
# only what was written (counted in its pagemap, the rest PE_PARENT); the
# last one decompresses and restores natively (and with `criu restore` when
# CRIU is there) with the target's self-check passing; rm of a middle
# snapshot keeps the later ones restorable.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/grow.st
# rollback-full: the restores below are of the chain by the native
# restorer (a small SNAP would otherwise go back in place, even after the
# rm of the tracking's snapshot)
export FORKPOINT_FAULT=rollback-full # the session helper's, for its whole life
grow_session inc --mib=16 --write-pages=8
unset FORKPOINT_FAULT

for i in $(seq 1 100); do
	ct_verify "$st" "$pid" >/dev/null || fail "verification $i: $(tail -n 2 "$st")"
	snap_json inc "s$i" "$WORK/s$i.json"
done

# The first is full and says why; every later one is incremental, with
# only the written pages present in its pagemap.
(cd "$WORK" && python3 - "$S" "$WORK" <<'PY') || fail "page counts of the chain"
import json, os, sys, pagemap
S, W = sys.argv[1], sys.argv[2]
j = [None] + [json.load(open(f"{W}/s{i}.json")) for i in range(1, 101)]
assert j[1]["full"] and j[1]["why"], j[1]
pr1, pa1 = pagemap.pagemap_pages(f"{S}/s1")
assert pa1 == 0 and pr1 >= 4096, (pr1, pa1)
assert not os.path.lexists(f"{S}/s1/parent")
for i in range(2, 101):
    assert not j[i]["full"], j[i]
    pr, pa = pagemap.pagemap_pages(f"{S}/s{i}")
    # 8 heap pages plus what the verification itself touches (stack, libc)
    assert pr * 20 < pr1, f"s{i} holds {pr} pages, the full s1 {pr1}"
    assert pr + pa >= pr1, f"s{i} covers only {pr} + {pa} pages of {pr1}"
    assert j[i]["pages"] == pr and j[i]["pages_parent"] == pa, (j[i], pr, pa)
    assert os.readlink(f"{S}/s{i}/parent") == f"../s{i-1}", os.readlink(f"{S}/s{i}/parent")
print(f"s1: {pr1} pages; s100: {pr} written, {pa} in its parents")
PY
# crit decodes a chain member (PE_PARENT entries included)
for d in s2 s50 s100; do
	for img in "$S/$d"/pagemap-*.img "$S/$d"/mm-*.img; do
		crit decode -i "$img" >/dev/null 2>"$WORK/crit.err" || fail "crit cannot decode $img: $(cat "$WORK/crit.err")"
	done
done

# rm of a middle snapshot: its data stays (hidden) while s51 relies on it.
"$FP" rm inc s50 || fail "rm s50"
"$FP" list inc --json | python3 -c 'import json,sys; n=[s["name"] for s in json.load(sys.stdin)]; assert "s50" not in n and len(n)==99, n' ||
	fail "s50 still listed"
"$FP" gc inc >/dev/null || fail "gc"
"$FP" decompress --verify --keep "$S/s60" || fail "s60 does not verify after rm s50 and gc"
# rm of the newest: nothing relies on it, it goes at once
"$FP" rm inc s100 || fail "rm s100"
ls -a "$S" | grep -q -- '-s100-' && fail "s100's data was kept though no snapshot uses it"

# The last member, decompressed and restored natively: the target checks
# every page (s99: taken after verification 99, so the next one is 100).
"$FP" decompress --verify "$S/s99" || fail "decompress --verify s99"
[[ -e $S/s1/pages-1.img ]] || fail "decompress did not expand the chain's first member"
"$FP" restore inc s99 --json >"$WORK/r.json" || fail "restore s99: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" engine) == native ]] || fail "not restored natively: $(cat "$WORK/r.json")"
pid=$(session_field inc target_pid)
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "after restoring s99: $line"
[[ $line == "verify 100 ok"* ]] || fail "restored s99 answered '$line'"
# and a middle one whose parent was removed
"$FP" restore inc s60 >/dev/null || fail "restore s60"
pid=$(session_field inc target_pid)
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "after restoring s60: $line"
[[ $line == "verify 61 ok"* ]] || fail "restored s60 answered '$line'"
"$FP" stop --kill inc
wait_for 15 test ! -e "/proc/$pid" || fail "session did not stop"

CRIU=${FORKPOINT_CRIU:-/opt/forkpoint/criu/bin/criu}
if [[ ! -x $CRIU ]]; then
	echo "no CRIU at $CRIU: the criu restore of the chain is skipped"
	echo ok
	exit 0
fi
"$FP" restore -D "$S/s99" --engine criu -d -o "$WORK/criu.log" >"$WORK/criu.out" 2>&1 ||
	fail "criu restore of s99: $(cat "$WORK/criu.out")"
wait_for 20 test -e "/proc/$pid" || fail "criu restored no process $pid"
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "after criu restore of s99: $line"
[[ $line == "verify 100 ok"* ]] || fail "criu-restored s99 answered '$line'"
kill -9 "$pid"
echo ok
