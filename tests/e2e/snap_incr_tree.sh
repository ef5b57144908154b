# Incremental snapshots of a process tree that grows: a child forked
# between two snapshots is written in full once (and the snapshot says
# why), then tracked like its parent; the tree restores from a later
# incremental snapshot and the child passes its self-check.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/kid.st
fifo=$WORK/go
mkfifo "$fifo"
"$FP" run --detach --name tr -- /bin/sh -c "read x <'$fifo'; '$T/ct_grow' '$st' --mib=8 --write-pages=4 --quiet-stdio & wait" \
	>/dev/null || fail "run"
track_pid "$(session_field tr helper_pid)"
root=$(session_field tr target_pid)
track_pid "$root"
S=$FORKPOINT_HOME/sessions/tr/snapshots

snap_json tr a "$WORK/a.json"
snap_json tr b "$WORK/b.json"
echo go >"$fifo"
wait_for 20 grep -q '^ready ' "$st" || fail "no child: $(cat "$st" 2>/dev/null)"
kid=$(awk '/^ready /{print $2; exit}' "$st")
track_pid "$kid"
snap_json tr c "$WORK/c.json"
ct_verify "$st" "$kid" >/dev/null || fail "verification 1"
snap_json tr d "$WORK/d.json"
(cd "$WORK" && python3 - "$S" "$WORK" "$kid" <<'PY') || fail "snapshots of the growing tree"
import json, sys, pagemap
S, W, kid = sys.argv[1], sys.argv[2], sys.argv[3]
j = {n: json.load(open(f"{W}/{n}.json")) for n in "abcd"}
assert j["a"]["full"] and not j["b"]["full"], j
assert j["c"]["processes"] == 2 and "new to the write tracking" in j["c"]["why"], j["c"]
assert j["d"]["processes"] == 2 and not j["d"]["full"] and not j["d"]["why"], j["d"]
import glob, os  # one pagemap at a time
def counts(d, pid):
    sub = W + "/one"
    os.makedirs(sub, exist_ok=True)
    for f in glob.glob(sub + "/*"): os.unlink(f)
    os.symlink(f"{d}/pagemap-{pid}.img", f"{sub}/pagemap-{pid}.img")
    return pagemap.pagemap_pages(sub)
pr, pa = counts(S + "/c", kid)
assert pa == 0 and pr >= 2048, ("the new child in c", pr, pa)
pr, pa = counts(S + "/d", kid)
assert pr * 10 < pa, ("the child in d", pr, pa)
print("c:", j["c"]["why"], "; d: child", pr, "written,", pa, "in the parent")
PY
"$FP" restore tr d >/dev/null || fail "restore d"
line=$(ct_verify "$st" "$kid") || fail "the child after restoring d: $line"
[[ $line == "verify 2 ok"* ]] || fail "the restored child answered '$line'"
"$FP" stop --kill tr
echo ok
