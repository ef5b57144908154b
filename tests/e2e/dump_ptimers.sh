# POSIX timers (ct_ptimers: every clock and notification, a deleted id, a
# fired timer's pending signal): four ways, as dump_locks.sh does them.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

start_ct pt "$T/ct_ptimers"
ct_verify pt 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify pt 2
crit decode -i "$WORK/r/core-$PID.img" --pretty >"$WORK/core.json" || fail "crit cannot decode the core image"
python3 - "$WORK/core.json" <<'PY' || fail "posix timers in the core image"
import json, sys
t = json.load(open(sys.argv[1]))["entries"][0]["tc"]["timers"]["posix"]
assert sorted(x["it_id"] for x in t) == [0, 1, 3, 4, 5], t
byid = {x["it_id"]: x for x in t}
assert byid[0]["isec"] == 7 and 500 <= byid[0]["vsec"] <= 1000 and byid[0]["sival_ptr"] == 0x1234, byid[0]
assert byid[4]["it_sigev_notify"] == 4 and byid[4]["notify_thread_id"] > 0, byid[4]
PY

"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "native restore"
ct_verify pt 3
pt_again() { # the same image answers verification 3 again
	if [[ $1 == "criu restore" ]]; then
		echo "ready $PID" >"$WORK/pt.st"
		ct_verify pt 3
	else
		ct_verify pt 4
	fi
}
criu_both_ways "$WORK/d" pt_again
echo ok
