# State that a dump and restore used to change without a word (ct_locks):
# POSIX, flock and OFD locks, fds without close-on-exec, a timer set with an
# absolute time, locked memory. Four ways: forkpoint's dump restored
# natively and by CRIU, CRIU's dump restored natively, and a dump with
# --leave-running after which the original still passes its check.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

start_ct lk "$T/ct_locks" --dir="$WORK"
ct_verify lk 1
# --leave-running: the original keeps every lock and flag.
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify lk 2
crit decode -i "$WORK/r/filelocks.img" --pretty >"$WORK/locks.json" || fail "crit cannot decode filelocks.img"
python3 - "$WORK/locks.json" <<'PY' || fail "filelocks.img: $(cat "$WORK/locks.json")"
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
got = sorted((x["flag"], x["type"], int(x["start"]), int(x["len"])) for x in e)
# POSIX 1, FLOCK 2, OFD 4; F_RDLCK 0, F_WRLCK 1; len 0 = to the end
assert got == [(1, 0, 20, 0), (1, 1, 0, 10), (2, 0, 0, 0), (4, 1, 0, 100)], got
PY
# A restore while the original still holds its locks is refused, by name.
rc=0; out=$("$FP" restore -D "$WORK/r" -d 2>&1) || rc=$?
((rc != 0)) || fail "restored a second holder of the original's locks"
[[ $out == *"taking back the"*"lock"* ]] || fail "the refusal does not name the lock: $out"
ct_verify lk 3

# CRIU's flags are accepted as they are in CRIU scripts.
"$FP" dump -t "$PID" -D "$WORK/d" --file-locks --shell-job >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "native restore"
ct_verify lk 4
# The same image again answers verification 4 again, so the old answers go
# first (the target appends to its status file); CRIU dumps locks when told.
lk_again() {
	if [[ $1 == "criu restore" ]]; then
		echo "ready $PID" >"$WORK/lk.st"
		ct_verify lk 4
	else
		ct_verify lk 5
	fi
}
CRIU_DUMP_ARGS=(--file-locks)
criu_both_ways "$WORK/d" lk_again
echo ok
