# A rollback in place proves the pages it writes back (per-page hashes of
# each snapshot's page store, pagehash-<id>.fph): with every page of the
# chain damaged it refuses before anything is touched, the session runs on
# as it was and its tracking still works; a damaged or swapped pagehash
# file is refused too; repaired, the same rollback is in place and the
# target proves every page. The whole chain is not hashed on each rollback
# (the json's verified_bytes stays below the size of the base snapshot).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
st=$WORK/status

# Without the read ahead (rollback_ahead.c): it reads and proves SNAP's
# pages before the damage below, and a rollback would write them back
# instead of refusing, depending on when it ran (e2e/rollback_ahead.sh).
FP_ROLLBACK_AHEAD=0 explore_session rv 16
if [[ -n ${FP_ROLLBACK_NO_URING:-} ]]; then # rollback_pread.sh: the helper must see it
	tr '\0' '\n' <"/proc/$(session_field rv helper_pid)/environ" | grep -qx "FP_ROLLBACK_NO_URING=$FP_ROLLBACK_NO_URING" ||
		fail "the session helper's environment lacks FP_ROLLBACK_NO_URING"
fi
S=$FORKPOINT_HOME/sessions/rv/snapshots

"$FP" snap rv s0 >/dev/null || fail "snap s0"
step 2
"$FP" snap rv s2 >/dev/null || fail "snap s2"
step 1
for s in s0 s2; do
	ls "$S/$s"/pagehash-*.fph >/dev/null 2>&1 || fail "$s has no pagehash file: $(ls "$S/$s")"
	cp -a "$S/$s" "$WORK/keep-$s"
done

refused() { # WHAT: the rollback to s2 is refused and nothing changed
	local out
	out=$("$FP" restore rv s2 2>&1) && fail "$1: restored: $out"
	[[ $out == *"left as it was"* ]] || fail "$1: $out"
	echo "refused ($1): $out"
	[[ $(session_field rv target_pid) == "$pid" ]] || fail "$1: the session's process changed"
	at 3
}
repair() {
	local s
	for s in s0 s2; do cp -a "$WORK/keep-$s/." "$S/$s/"; done
}

# one byte flipped in every page of both page stores (plain pages-*.img):
# whatever pages the rollback needs, each is damaged
python3 - "$S/s0" "$S/s2" <<'PY' || fail "flipping pages"
import glob, sys
for d in sys.argv[1:]:
    for f in glob.glob(d + "/pages-*.img"):
        with open(f, "r+b") as fh:
            b = bytearray(fh.read())
            for i in range(100, len(b), 4096):
                b[i] ^= 0x5a
            fh.seek(0); fh.write(b)
PY
refused "flipped pages"
repair

# a pagehash entry changed: the pages it covers no longer prove
python3 - "$S/s2" <<'PY' || fail "flipping hashes"
import glob, sys
for f in glob.glob(sys.argv[1] + "/pagehash-*.fph"):
    with open(f, "r+b") as fh:
        b = bytearray(fh.read())
        for i in range(32, len(b), 8):
            b[i] ^= 1
        fh.seek(0); fh.write(b)
PY
refused "flipped pagehash entries"
repair

# s0's pagehash file in s2: bound to s2's manifest by count and last link
f0=$(cd "$S/s0" && ls pagehash-*.fph | head -n 1)
cp "$S/s0/$f0" "$S/s2/$f0"
refused "pagehash file of another snapshot"
repair

# intact again: in place, the target proves every page, and only what
# the rollback read was hashed
"$FP" restore rv s2 --json >"$WORK/r.json" || fail "restore s2: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "not in place: $(cat "$WORK/r.json")"
at 2
base=$(du -sb "$S/s0" | cut -f1)
vb=$(json_field "$WORK/r.json" verified_bytes)
[[ -n $vb && $vb != None ]] || fail "no verified_bytes in $(cat "$WORK/r.json")"
(( vb < base / 2 )) || fail "the rollback hashed $vb bytes, the base snapshot has $base"
# and the tracking goes on: the next snapshot is incremental, the next
# rollback in place
step 1
"$FP" snap rv s3 --json >"$WORK/s.json" || fail "snap s3"
[[ $(json_field "$WORK/s.json" full) == False ]] || fail "snap after the rollbacks was full: $(cat "$WORK/s.json")"
"$FP" restore rv s0 --json >"$WORK/r.json" || fail "restore s0: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "s0 not in place: $(cat "$WORK/r.json")"
at 0
"$FP" stop rv
echo ok
