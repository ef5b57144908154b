# A restore proves its image first: a session snapshot with a file of
# another snapshot, or no manifest is refused before anything is stopped,
# the session runs on untouched, and `list` marks it DAMAGED (also one with
# a flipped byte, which a rollback in place refuses only if it needs that
# page, else the state it makes is right: the target checks); an intact one
# restores. restore -D refuses the same, and a --no-verify one
# says it is unverified.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (session restore with exact pids)"; exit 77; }

st=$WORK/status
"$FP" run --detach --name vs -- "$T/ct_heap" "$st" --mib=16 >/dev/null || fail "run"
hpid=$(session_field vs helper_pid); track_pid "$hpid"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
tpid=$(session_field vs target_pid); track_pid "$tpid"
"$FP" snap vs good >/dev/null || fail "snap good"
# A verification changes the target's memory (its count), so the next
# snapshots' page data differs from good's.
v=$(ct_verify "$st" "$tpid") || fail "target broken before the snapshots: $v"
for s in flip swap noman; do "$FP" snap vs $s >/dev/null || fail "snap $s"; done
S=$FORKPOINT_HOME/sessions/vs/snapshots
flip() { printf '\xa5' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
store=$(cd "$S/flip" && ls pages-*.* | head -n 1)
cmp -s "$S/good/$store" "$S/swap/$store" && fail "good and swap have the same page data: the swap would test nothing"
flip "$S/flip/$store" $(( $(stat -c %s "$S/flip/$store") / 2 ))
cp "$S/good/$store" "$S/swap/$store"
rm "$S/noman/forkpoint.manifest"

"$FP" list vs >"$WORK/list.txt" || fail "list"
grep -q '^good  *[0-9]' "$WORK/list.txt" || fail "intact snapshot not listed: $(cat "$WORK/list.txt")"
grep -q '^noman  *DAMAGED' "$WORK/list.txt" || fail "no-manifest snapshot not DAMAGED: $(cat "$WORK/list.txt")"
"$FP" list vs --verify --json >"$WORK/list.json" || fail "list --verify"
python3 - "$WORK/list.json" <<'PY' || fail "list --verify --json: $(cat "$WORK/list.json")"
import json, sys
d = {s["name"]: s for s in json.load(open(sys.argv[1]))}
assert not d["good"]["damaged"], d["good"]
for n in ("flip", "swap", "noman"):
    assert d[n]["damaged"] and d[n]["damage"], d[n]
PY

for s in flip swap noman; do
	if out=$("$FP" restore vs $s 2>&1); then
		# In place, a rollback proves the pages it writes back as it reads
		# them (e2e/rollback_verify refuses damaged ones): a damaged page
		# it does not need leaves the state right, which the target proves.
		[[ $s == flip ]] || fail "damaged snapshot $s restored: $out"
		v=$(ct_verify "$st" "$tpid") || fail "target broken after restoring flip in place: $v"
	else
		[[ $out == *"left as it was"* || $out == *"no complete snapshot"* ]] || fail "restore of $s: $out"
	fi
	[[ $(session_field vs target_pid) == "$tpid" ]] && [[ -e /proc/$tpid ]] || fail "session process changed after refusing $s"
done
v=$(ct_verify "$st" "$tpid") || fail "target broken after the refusals: $v"

out=$("$FP" restore -D "$S/flip" -d -o "$WORK/r.log" 2>&1) && fail "restore -D of a flipped page store: $out"
[[ $out == *"before creating any process"* ]] || fail "restore -D flip: $out"
out=$("$FP" restore -D "$S/swap" --engine criu -d -o "$WORK/r.log" 2>&1) && fail "criu engine restored a swapped store: $out"
[[ $out == *"before creating any process"* ]] || fail "restore -D --engine criu swap: $out"

# decompress --keep leaves both page files; CRIU would read the plain one.
cp -a "$S/good" "$WORK/kept"
"$FP" decompress --keep "$WORK/kept" || fail "decompress --keep"
flip "$WORK/kept/pages-1.img" 4096
out=$("$FP" restore -D "$WORK/kept" --engine criu -d -o "$WORK/r.log" 2>&1) && fail "a flipped plain copy next to its store was restored: $out"
[[ $out == *"pages-1.img"* ]] || fail "restore of a flipped pages-1.img: $out"

"$FP" restore vs good >/dev/null || fail "intact snapshot refused"
v=$(ct_verify "$st" "$tpid") || fail "restored target broken: $v"
"$FP" stop vs
echo ok
