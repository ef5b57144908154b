# File locks of a session's program under the shim (ct_locks: POSIX, flock
# and OFD locks on a few fds). The shim's table is the stop's shortcut for
# those fds (dump_fdshort.c), and for a few fds each one's locks are found
# in its own fdinfo instead of /proc/locks: every lock must still be in the
# snapshot's filelocks.img (crit), in the first snapshot and in an
# incremental one, and dump.log says how the locks were looked for.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/lk.st
"$FP" run --detach --name lk -- "$T/ct_locks" "$st" --dir="$WORK" --quiet-stdio >/dev/null || fail "run"
track_pid "$(session_field lk helper_pid)"
wait_for 20 grep -q '^ready ' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field lk target_pid)
track_pid "$pid"
S=$FORKPOINT_HOME/sessions/lk/snapshots
for s in s1 s2; do
	snap_json lk "$s" "$WORK/$s.json"
	ct_verify "$st" "$pid" >/dev/null || fail "$s: the target's check after the snapshot: $(tail -n 2 "$st")"
	grep -q "locks from each fd's fdinfo" "$S/$s/dump.log" ||
		fail "$s: the locks were not looked for in the fds' fdinfo: $(grep -i 'locks' "$S/$s/dump.log")"
	crit decode -i "$S/$s/filelocks.img" --pretty >"$WORK/$s.locks.json" || fail "$s: crit cannot decode filelocks.img"
	python3 - "$WORK/$s.locks.json" <<'PY' || fail "$s: filelocks.img: $(cat "$WORK/$s.locks.json")"
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
got = sorted((x["flag"], x["type"], int(x["start"]), int(x["len"])) for x in e)
# POSIX 1, FLOCK 2, OFD 4; F_RDLCK 0, F_WRLCK 1; len 0 = to the end
assert got == [(1, 0, 20, 0), (1, 1, 0, 10), (2, 0, 0, 0), (4, 1, 0, 100)], got
PY
done
[[ $(json_field "$WORK/s2.json" full) == False ]] || fail "s2 is not incremental: $(cat "$WORK/s2.json")"
"$FP" stop --kill lk >/dev/null 2>&1
echo ok
