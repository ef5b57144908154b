# Event fds (eventfd, epoll, signalfd, timerfd): forkpoint dumps them as
# CRIU's file entries (crit decodes them), and the snapshot restores with
# every counter, mask, timer and epoll watch as it was, by the native
# engine and by CRIU.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
start_ct ev "$T/ct_events"
ct_verify ev 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify ev 2
"$FP" dump -t "$PID" -D "$WORK/d" --compress none >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
crit decode -i "$WORK/d/files.img" --pretty >"$WORK/files.json" || fail "crit cannot decode files.img"
for k in EVENTFD EVENTPOLL SIGNALFD TIMERFD; do
	grep -q "\"$k\"" "$WORK/files.json" || fail "no $k entry in files.img"
done
python3 - "$WORK/files.json" <<'PY' || fail "files.img entries"
import json, sys
e = {x["type"]: x for x in json.load(open(sys.argv[1]))["entries"]}
assert int(e["EVENTFD"]["efd"]["counter"]) == 5, e["EVENTFD"]
assert len(e["EVENTPOLL"]["epfd"]["tfd"]) == 3, e["EVENTPOLL"]
assert sorted(int(t["data"]) for t in e["EVENTPOLL"]["epfd"]["tfd"]) == [0x1234, 0x5678, 0x9abc], e["EVENTPOLL"]
PY
# Natively, then through CRIU: both bring every counter, mask and watch back.
engines=(native)
if [[ -n $CRIU ]]; then engines+=(criu); else skip_part "restore --engine criu"; fi
for engine in "${engines[@]}"; do
	echo "ready $PID" >"$WORK/ev.st"
	out=$("$FP" restore -D "$WORK/d" -d --engine $engine 2>&1) || fail "restore --engine $engine: $out"
	ct_verify ev 3
	kill -9 "$PID"; wait_gone "$PID"
done
echo ok
