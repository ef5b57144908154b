# snap --early-reply (helper/dump/dump_early_reply.c): the reply comes once
# the processes run again, before the images are written.
#   - The snapshot is the state at the stop, not a later one: the target
#     steps (writing pages) right after the reply, while the images are
#     still being written, and rollbacks to it give back exactly its pages
#     and step count (ct_explore checks every page). The session's next
#     request finds it published.
#   - A failure after the reply (FORKPOINT_FAULT=snap-fail-after-reply,
#     as a full disk would): the snapshot is not made, a restore of it names
#     its log, the next snapshot is full and says why, and the snapshots
#     around it restore exactly.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"

st=$WORK/e.status
explore_session e 64
D=$FORKPOINT_HOME/sessions/e/snapshots
step 1
"$FP" snap e s1 >/dev/null || fail "snap s1"
step 1
"$FP" snap e s2 --early-reply --json >"$WORK/s2.json" ||
	fail "snap s2 --early-reply: $(cat "$WORK/s2.json")"
[[ $(json_field "$WORK/s2.json" early_reply) == True ]] || fail "s2 did not reply early: $(cat "$WORK/s2.json")"
[[ $(json_field "$WORK/s2.json" full) == False ]] || fail "s2 is not incremental: $(cat "$WORK/s2.json")"
step 2 # while s2's images may still be written
"$FP" restore e s2 --json >"$WORK/r2.json" || fail "restore s2: $(cat "$WORK/r2.json")"
[[ -f $D/s2/forkpoint.manifest ]] || fail "s2 not published after the next request"
[[ $(json_field "$WORK/r2.json" in_place) == True ]] || fail "restore s2 not in place: $(cat "$WORK/r2.json")"
at 2
step 1
"$FP" snap e s3 --early-reply --json >"$WORK/s3.json" ||
	fail "snap s3 --early-reply: $(cat "$WORK/s3.json")"
step 1
back_to e s1 1
back_to e s3 3
"$FP" list e | grep -q '^s3 ' || fail "s3 not listed: $("$FP" list e)"
"$FP" stop e

st=$WORK/f.status
FORKPOINT_FAULT=snap-fail-after-reply explore_session f 64
step 1
"$FP" snap f s1 >/dev/null || fail "snap s1 (no early reply: no fault)"
step 1
"$FP" snap f s2 --early-reply --json >"$WORK/f2.json" ||
	fail "snap s2 --early-reply: $(cat "$WORK/f2.json")" # told it is taken; it fails after
step 1
snap_json f s3 "$WORK/f3.json"
full_because "$WORK/f3.json" "*snapshot 's2' failed after its early reply*"
if "$FP" restore f s2 >"$WORK/fr2.out" 2>&1; then fail "restore of the failed s2 succeeded"; fi
grep -q "s2.failed.log" "$WORK/fr2.out" || fail "restore of s2 does not name its log: $(cat "$WORK/fr2.out")"
[[ -f $FORKPOINT_HOME/sessions/f/snapshots/s2.failed.log ]] || fail "no s2.failed.log"
at 3
back_to f s1 1
back_to f s3 3
"$FP" stop f
echo ok
