# Incremental snapshots whose new mappings are registered for write
# tracking from the shim's mapping change log (issue 16), while the target
# remaps all the time: ct_churn's worker munmaps, maps and mremaps its slots
# between (and during) the snapshots. The log must be what registered them
# (dump.log says so), and every snapshot, restored in place, must pass the
# target's byte-for-byte replay check: a mapping the log got wrong would show
# as a page taken from the parent.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/churn.st
# slow enough that the ring (8192 changes) holds what happens between two
# snapshots even on a loaded machine
"$FP" run --detach --name sl -- "$T/ct_churn" "$st" --mib=16 --sleep-us=2000 >/dev/null || fail "run"
track_pid "$(session_field sl helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field sl target_pid)
track_pid "$pid"
S=$FORKPOINT_HOME/sessions/sl/snapshots

fromlog=0
for i in 1 2 3 4 5 6; do
	snap_json sl "s$i" "$WORK/s$i.json"
	((i == 1)) && continue
	[[ $(json_field "$WORK/s$i.json" full) == False ]] || fail "s$i is not incremental: $(cat "$WORK/s$i.json")"
	if grep -q "mappings registered from the shim's change log" "$S/s$i/dump.log"; then
		fromlog=$((fromlog + 1))
		grep -q "new range(s) tracked" "$S/s$i/dump.log" || fail "s$i: no count of new ranges"
	else
		grep -q "mappings registered from /proc: " "$S/s$i/dump.log" || fail "s$i: neither the log nor /proc said why"
	fi
done
((fromlog >= 1)) || fail "no snapshot registered its new mappings from the shim's log: $(grep -h 'registered from' "$S"/s*/dump.log)"
echo "$fromlog of 5 incremental snapshots registered from the shim's log"
grep -h "registered from /proc" "$S"/s*/dump.log || true

for s in s6 s4 s2 s6; do
	restore_check sl "$s" "$st"
done
# After a rollback (in place, the log went back with the memory: /proc
# once; or restored anew: the position is taken again) the log is used
# again, and what it registered restores right.
# (A fallback to /proc in between is right when libc's malloc grew the
# heap behind the wrappers: said so, and the next snapshot uses the log.)
used=
for k in 1 2 3 4; do
	snap_json sl "after$k" "$WORK/after$k.json"
	grep -h "registered from" "$S/after$k/dump.log"
	if grep -q "mappings registered from the shim's change log" "$S/after$k/dump.log"; then
		used=after$k
		break
	fi
done
[[ -n $used ]] || fail "the log was not used again after a rollback"
restore_check sl "$used" "$st"
"$FP" stop sl
echo ok
