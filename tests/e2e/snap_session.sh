# forkpoint snap / list on a live session: snapshots appear complete, the
# program keeps running unharmed, names are checked.
source "$(dirname "$0")/../lib.sh"

"$FP" run --detach --name sn -- "$BUILD/examples/counter" "$WORK/counter.log" >/dev/null || fail "run"
hpid=$("$FP" ps --json | python3 -c 'import json,sys; print([s["helper_pid"] for s in json.load(sys.stdin) if s["name"]=="sn"][0])')
track_pid "$hpid"
wait_for 10 test -s "$WORK/counter.log" || fail "counter never ticked"

name=$("$FP" snap sn) || fail "snap failed: $name"
[[ $name == snap-1 ]] || fail "first snapshot named '$name'"
"$FP" snap sn mine --json >"$WORK/snap.json" || fail "named snap failed"
python3 - "$WORK/snap.json" <<'PY' || fail "snap --json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["name"] == "mine" and d["threads"] == 2 and d["processes"] == 1, d
# the counter holds 16 MiB; the second snapshot is incremental: what it
# wrote plus what it leaves in its parent
assert d["pages"] + d["pages_parent"] >= 4096 and not d["full"], d
PY
err=$("$FP" snap sn mine 2>&1) && fail "duplicate snapshot name accepted"
[[ $err == *"already exists"* ]] || fail "duplicate name message: $err"
err=$("$FP" snap sn 'bad/name' 2>&1); [[ $? == 2 ]] || fail "bad snapshot name: $err"
err=$("$FP" snap no-such-session 2>&1); [[ $? == 3 ]] || fail "missing session: $err"

"$FP" list sn --json >"$WORK/list.json" || fail "list"
python3 - "$WORK/list.json" <<'PY' || fail "list --json"
import json, sys
d = json.load(open(sys.argv[1]))
assert [s["name"] for s in d] == ["snap-1", "mine"], d
assert all(s["disk_bytes"] > 0 and s["pages"] > 0 for s in d), d
PY
dir=$FORKPOINT_HOME/sessions/sn/snapshots/snap-1
[[ $(stat -c %a "$dir") == 700 ]] || fail "snapshot dir not 0700"
for f in "$dir"/*; do
	[[ $(stat -c %a "$f") == 600 ]] || fail "$f not 0600"
done
# crit (Debian 12's) decodes every image the snapshot holds (pages-N.img is
# raw page data, as CRIU's own: crit does not decode those).
for img in "$dir"/*.img; do
	[[ $(basename "$img") == pages-*.img ]] && continue
	crit decode -i "$img" >/dev/null 2>"$WORK/crit.err" || fail "crit cannot decode $(basename "$img"): $(cat "$WORK/crit.err")"
done

# The program went on, unharmed, checking its own memory and log every tick.
n=$(wc -l <"$WORK/counter.log")
wait_for 10 bash -c "(( \$(wc -l <'$WORK/counter.log') > $n + 1 ))" || fail "counter stopped after snap"
grep -q BROKEN "$FORKPOINT_HOME/sessions/sn/output.log" && fail "counter found its state broken"
"$FP" stop sn
echo ok
