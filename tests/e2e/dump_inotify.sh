# inotify with its watches (ct_inotify: a directory and files, a gap in
# the watch numbers, a one-shot mask, a watch on a file deleted since but
# still open). Four ways: `dump --leave-running` with the original still
# passing its check; dump and native restore; `criu restore` of
# forkpoint's image; `criu dump` and native restore (these two without
# the one-shot flag, which CRIU 4.2's restore drops). The watch on the
# deleted file has no path to come back on: the dump leaves it out and
# says so in its log.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
start_ct in "$T/ct_inotify" --dir="$WORK" --deleted --oneshot
ct_verify in 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify in 2
grep -q "inotify fd .*watch 5 .*deleted since: left out" "$WORK/r/dump.log" || fail "the dump log does not name the left-out watch"
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
crit decode -i "$WORK/d/files.img" --pretty >"$WORK/files.json" || fail "crit cannot decode files.img"
python3 - "$WORK/files.json" "$WORK" <<'PY' || fail "inotify entry in files.img"
import json, sys
e = [x for x in json.load(open(sys.argv[1]))["entries"] if x["type"] == "INOTIFY"]
assert len(e) == 1, e
wd = {w["wd"]: w for w in e[0]["ify"]["wd"]}
assert sorted(wd) == [1, 2, 4], wd
assert wd[1]["f_handle"]["path"] == sys.argv[2] + "/watched", wd[1]
assert wd[2]["f_handle"]["path"] == sys.argv[2] + "/watched/a", wd[2]
assert len(wd[4]["f_handle"]["handle"]) == 16, wd[4]
PY
out=$("$FP" restore -D "$WORK/d" -d --engine native -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
grep -q natively "$WORK/native.log" || fail "not restored natively"
ct_verify in 3
ct_verify in 4
kill -9 "$PID"; wait_gone "$PID"
if [[ -n $CRIU ]]; then
	rm -rf "$WORK/watched" "$WORK/other"
	start_ct ic "$T/ct_inotify" --dir="$WORK" --deleted
	ct_verify ic 1
	"$FP" dump -t "$PID" -D "$WORK/f" >/dev/null || fail "dump: $(tail -n 3 "$WORK/f.failed.log" 2>/dev/null)"
	wait_gone "$PID"
	"$FP" restore -D "$WORK/f" -d --engine native >/dev/null || fail "native restore of $WORK/f"
	ct_verify ic 2
	# `criu restore` of the same image answers verification 2 again; then
	# `criu dump` and native restore
	ic_check() {
		if [[ $1 == "criu restore" ]]; then
			echo "ready $PID" >"$WORK/ic.st"
			ct_verify ic 2
		else
			ct_verify ic 3
		fi
	}
	criu_both_ways "$WORK/f" ic_check
else
	skip_part "criu restore of forkpoint's image of inotify, and native restore of CRIU's"
fi
echo ok
