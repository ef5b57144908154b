# restore SESSION SNAP in place: a multi-threaded target with a child,
# mappings made, protected and removed, fd offsets and a file in its
# workspace goes back to a snapshot without new processes, to the newest
# and to older ones, twice in a row; the target proves every page, thread,
# fd and offset equals the snapshot's. After an exec the restore is a full
# one and says why.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
ws=$WORK/ws
mkdir -p "$ws"
st=$WORK/status

"$FP" run --detach --name ex --workdir "$ws" -- "$T/ct_explore" "$st" --mib=16 --files="$ws" >/dev/null || fail "run"
track_pid "$(session_field ex helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field ex target_pid)
track_pid "$pid"
kid=$(awk '/^info kid/ {print $3}' "$st")

restore() { # SNAP: in place, json into $WORK/r.json
	"$FP" restore ex "$1" --json >"$WORK/r.json" || fail "restore $1: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "restore $1 not in place: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" pid) == "$pid" ]] || fail "restore $1 changed the pid"
	[[ -d /proc/$kid ]] || fail "the child $kid is gone"
}

"$FP" snap ex s0 >/dev/null || fail "snap s0"
at 0
step 2
"$FP" snap ex s2 >/dev/null || fail "snap s2"
step 1
"$FP" snap ex s3 >/dev/null || fail "snap s3"
step 2
at 5
restore s3; at 3                 # the newest
step 3; at 6
restore s0; at 0                 # an older one: fd 40 closed, areas unmapped
restore s2; at 2                 # forwards again
restore s2; at 2                 # twice in a row
step 4; at 6
"$FP" snap ex s6 >/dev/null || fail "snap s6 after rollbacks"
step 1
restore s6; at 6
restore s3; at 3
[[ $(cat "$ws/explore.log" 2>/dev/null | wc -l) == 0 ]] || fail "the base directory was written"

# After an exec the processes are not SNAP's: a full restore, and why.
kill -RTMIN "$pid"
wait_for 20 bash -c "grep -q sleep /proc/$pid/cmdline" || fail "no exec"
"$FP" restore ex s2 --json >"$WORK/r.json" || fail "restore after exec: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == False ]] || fail "in place after an exec: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" why) == *exec* ]] || fail "why: $(cat "$WORK/r.json")"
kid=$(pgrep -P "$pid" | head -n1)
at 2
# and the next rollback after that full restore is in place again
step 2; at 4
restore s2; at 2
"$FP" stop ex
echo ok
