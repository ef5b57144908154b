# The kernel drops a mapping's userfaultfd registration without clearing its
# pages' protection bits when mremap merges the mapping with a neighbour
# (tests/targets/ct_remerge.c: MiB 0 of a 3 MiB mapping moved away, tracked
# as a new mapping by the snapshot in between, moved back: MiB 1-2 lose the
# registration, then are rewritten). A written page there looks unwritten.
# Snapshots and rollbacks in place must find that those pages left the
# tracking (helper/dump/track_lost.c) and take them from the process, never
# from the parent or a stale copy; and a rollback that registers them again
# must protect them anew, or the next rewrite goes unseen. With the shim
# (its log sees the mremap, not the merge) and without it.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

# verify_steps STATUS PID STEPS: a verification that passes and reports
# STEPS done before it (it then does step STEPS+1).
verify_steps() {
	local line
	line=$(ct_verify "$1" "$2") || fail "$mode: verification: $line"
	[[ $line == *" steps=$(($3 + 1))"* ]] || fail "$mode: expected the state after step $3: $line"
}

for mode in shim no-shim; do
	st=$WORK/$mode.st
	opt=()
	[[ $mode == no-shim ]] && opt=(--no-shim)
	"$FP" run --detach --name "$mode" "${opt[@]}" -- "$T/ct_remerge" "$st" --quiet-stdio >/dev/null || fail "run $mode"
	track_pid "$(session_field "$mode" helper_pid)"
	wait_for 20 grep -q '^ready ' "$st" || fail "$mode: target not ready: $(cat "$st")"
	pid=$(session_field "$mode" target_pid)
	track_pid "$pid"
	S=$FORKPOINT_HOME/sessions/$mode/snapshots
	r=$(sed -n 's/^info r \([0-9a-f]*\)$/\1/p' "$st")
	[[ -n $r ]] || fail "$mode: no address of R in $st"

	snap_json "$mode" s0 "$WORK/$mode-s0.json"
	verify_steps "$st" "$pid" 0 # step 1: MiB 0 away, MiB 2 rewritten
	snap_json "$mode" s1 "$WORK/$mode-s1.json"
	verify_steps "$st" "$pid" 1 # step 2: back (the merge), MiB 1-2 rewritten
	snap_json "$mode" s2 "$WORK/$mode-s2.json"
	[[ $(json_field "$WORK/$mode-s2.json" full) == False ]] || fail "$mode: s2 is not incremental"
	if ! grep -q "no longer registered for write tracking" "$S/s2/dump.log"; then
		skip_part "$mode: the loss of the registration" "this kernel kept it across an mremap merge: not exercised"
	fi
	# every page of MiB 1-2 (rewritten at step 2) is in s2 itself
	(cd "$WORK" && python3 - "$S/s2" "$r" <<'PY') || fail "$mode: s2 left rewritten pages to its parent"
import sys, pagemap
d, r = sys.argv[1], int(sys.argv[2], 16)
ents = pagemap.entries(d)
for page in range(r + (1 << 20), r + (3 << 20), 4096):
    fl = [f for v, n, f in ents if v <= page < v + n * 4096]
    assert fl == [4], f"page {page:#x} (MiB {(page - r) >> 20}) has flags {fl} in s2"
PY
	verify_steps "$st" "$pid" 2 # step 3: away, MiB 2 rewritten
	snap_json "$mode" s3 "$WORK/$mode-s3.json"
	verify_steps "$st" "$pid" 3 # step 4: back (the merge again), MiB 1-2 rewritten

	# Back to s2 in place: MiB 1-2 changed since s3 behind the tracking's
	# back, and must be written back.
	"$FP" restore "$mode" s2 --json >"$WORK/r.json" 2>&1 || fail "$mode: restore s2: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" engine) == in-place ]] || fail "$mode: restore s2 not in place: $(cat "$WORK/r.json")"
	verify_steps "$st" "$pid" 2 # step 3 again: MiB 2 rewritten, now under the registration the rollback made
	snap_json "$mode" s4 "$WORK/$mode-s4.json"
	verify_steps "$st" "$pid" 3 # step 4
	"$FP" restore "$mode" s4 >"$WORK/r.out" 2>&1 || fail "$mode: restore s4: $(cat "$WORK/r.out")"
	verify_steps "$st" "$pid" 3
	"$FP" stop "$mode" >/dev/null
	echo "$mode: ok"
done
