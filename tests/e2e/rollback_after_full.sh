# Rollback in place after a full restore, when the restored process wrote
# before the write tracking was armed again. A full restore (the first
# rollback, FORKPOINT_FAULT=rollback-full-1) ends by arming the tracking
# after its reply; the helper pauses there (session-pause-before-arm) and
# the restored ct_grow --drop takes a step meanwhile: it writes fresh pages
# where SNAP has none, rewrites heap pages and empties others. Those pages
# are protected by the arming like all others, so nothing says "written"
# about them later; which pages have content then is not any snapshot's
# page list. The next rollback to SNAP is in place and must still bring
# every one of them back (the fresh ones to zeros): the target checks each
# page of its heap and drop area against its own model after it. So must
# the snapshot taken right after the arming, restored from its images.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/af.st
export FORKPOINT_FAULT=rollback-full-1,session-pause-before-arm
grow_session af --mib=4 --write-pages=2 --drop
unset FORKPOINT_FAULT
sdir=$FORKPOINT_HOME/sessions/af
line=$(ct_verify "$st" "$pid") || fail "verification 1: $line"
snap_json af s1 "$WORK/s1.json"
for n in 2 3; do
	line=$(ct_verify "$st" "$pid") || fail "verification $n: $line"
done

# the full restore; its arming waits for us
"$FP" restore af s1 --json >"$WORK/r1.json" || fail "restore s1: $(cat "$WORK/r1.json")"
[[ $(json_field "$WORK/r1.json" in_place) == False ]] || fail "the first rollback was in place (the fault did not act)"
wait_for 30 test -e "$sdir/session-pause-before-arm.paused" || fail "the helper never paused before the arming"
pid=$(session_field af target_pid)
track_pid "$pid"
# state 1 restored: verification 2 checks it and takes step 2 (fresh pages
# in the drop area, heap pages rewritten, pages emptied)
line=$(ct_verify "$st" "$pid") || fail "after the full restore: $line"
[[ $line == "verify 2 ok"* ]] || fail "after the full restore: expected verification 2: $line"
touch "$sdir/session-pause-before-arm.go"
wait_for 30 bash -c "[[ ! -e '$sdir/session-pause-before-arm.paused' ]]" || fail "the helper did not go on"
# a snapshot now is incremental against s1 (restored from its images at the end)
snap_json af s2 "$WORK/s2.json"

# now in place, twice: right away, and after more steps
for round in 1 2; do
	line=$(ct_verify "$st" "$pid") || fail "round $round, before the rollback: $line"
	"$FP" restore af s1 --json >"$WORK/r2.json" || fail "round $round: restore s1: $(cat "$WORK/r2.json")"
	[[ $(json_field "$WORK/r2.json" in_place) == True ]] ||
		fail "round $round: not in place: $(json_field "$WORK/r2.json" why)"
	[[ $(session_field af target_pid) == "$pid" ]] || fail "round $round: the target was replaced"
	line=$(ct_verify "$st" "$pid") || fail "round $round, after the rollback to s1: $line"
	[[ $line == "verify 2 ok"* ]] || fail "round $round, after the rollback: expected verification 2: $line"
	echo "round $round: rolled back in place, every page checked"
done

# s2, from its images with the program gone
"$FP" stop --kill af >/dev/null 2>&1
wait_for 20 grep -q '^state=exited' "$sdir/session.meta" || fail "the session did not end"
wait_for 30 bash -c "! kill -0 $pid 2>/dev/null" || fail "pid $pid still taken"
"$FP" restore af s2 --json >"$WORK/r3.json" || fail "restore s2: $(cat "$WORK/r3.json")"
track_pid "$(session_field af helper_pid)"
pid=$(session_field af target_pid)
track_pid "$pid"
line=$(ct_verify "$st" "$pid") || fail "s2 restored from its images: $line"
[[ $line == "verify 3 ok"* ]] || fail "s2 restored from its images: expected verification 3: $line"
"$FP" stop --kill af >/dev/null 2>&1
echo ok
