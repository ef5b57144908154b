# An epoll whose watched files moved to other fd numbers since they were
# added (dup, then close: ct_events --moved): the watch lives on the open
# file, so the dump finds the fd that now holds it (kcmp KCMP_EPOLL_TFD)
# and every restore watches the same files. Four ways: `dump
# --leave-running` with the original still passing its check; dump and
# native restore; `criu restore` of forkpoint's image; `criu dump` and
# native restore.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
start_ct ev "$T/ct_events" --moved
ct_verify ev 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify ev 2
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
crit decode -i "$WORK/d/files.img" --pretty >"$WORK/files.json" || fail "crit cannot decode files.img"
python3 - "$WORK/files.json" <<'PY' || fail "epoll watches in files.img"
import json, sys
e = {x["type"]: x for x in json.load(open(sys.argv[1]))["entries"]}
tfd = {int(t["data"]): t["tfd"] for t in e["EVENTPOLL"]["epfd"]["tfd"]}
# the eventfd and the pipe's read end are watched through fds 40 and 41 now
assert tfd[0x1234] == 40 and tfd[0x5678] == 41, tfd
PY
out=$("$FP" restore -D "$WORK/d" -d --engine native -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
grep -q natively "$WORK/native.log" || fail "not restored natively"
ct_verify ev 3
ct_verify ev 4
# The same image again answers verification 3 again: the old answers go
# first (the target appends to its status file).
ev_again() {
	if [[ $1 == "criu restore" ]]; then
		echo "ready $PID" >"$WORK/ev.st"
		ct_verify ev 3
	else
		ct_verify ev 4
	fi
}
criu_both_ways "$WORK/d" ev_again
echo ok
