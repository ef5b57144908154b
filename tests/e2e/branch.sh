# forkpoint branch: K live sessions from one snapshot while the original runs
# on. Each branch starts in the snapshot's state (memory, fds, files), and
# what one changes (memory and workspace files) no other branch and not the
# original sees. Inside a branch, snap/restore/branch/stop work; a branch of
# a branch too; stopping the original leaves its branches running; rm+gc of
# the snapshot a branch stands on leaves the branch working; tree --json.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid and mount namespaces, overlay)"; exit 77; }
source "$(dirname "$0")/branch_common.inc"
st=$WORK/status
dir=$WORK/project
start_ws_session ws
pid=$(session_field ws target_pid)
track_pid "$pid"

"$FP" snap ws s0 >/dev/null || fail "snap s0"
expect "$pid" 0 "original"
expect "$pid" 1 "original"     # the original is at step 2 now

out=$("$FP" branch ws s0 -n 3 --json) || fail "branch -n 3: $out"
names=$(python3 -c 'import json,sys; b=json.load(sys.stdin); assert len(b)==3, b
for x in b:
    assert x["pid"]>0 and x["ns_pid"]>0 and x["ms"]>0, x
    print(x["name"], x["pid"], x["ns_pid"], x["helper_pid"])' <<<"$out") || fail "branch --json: $out"
declare -A bp
while read -r n p nsp h; do
	track_pid "$h"
	bp[$n]=$p
	[[ $nsp == "$pid" ]] || fail "$n: pid $nsp inside its namespace, the snapshot's was $pid"
	grep -q "^NSpid:[[:space:]]*$p[[:space:]]*$pid\$" "/proc/$p/status" || fail "$n NSpid: $(grep NSpid "/proc/$p/status")"
	[[ $(session_field "$n" target_pid) == "$p" ]] || fail "$n: ps shows another pid than branch --json"
done <<<"$names"
[[ ${!bp[*]} == *ws-b1* && ${!bp[*]} == *ws-b2* && ${!bp[*]} == *ws-b3* ]] || fail "branch names: ${!bp[*]}"

# Each branch is at the snapshot's step, not at the original's.
for n in ws-b1 ws-b2 ws-b3; do expect "${bp[$n]}" 0 "$n from s0"; done   # each at step 1 now
# b1 moves on alone: memory and files. Nobody else sees it.
expect "${bp[ws-b1]}" 1 "ws-b1"
expect "${bp[ws-b1]}" 2 "ws-b1"                                         # b1 at step 3
expect "${bp[ws-b2]}" 1 "ws-b2 after b1 changed"                        # b2 at step 2
expect "${bp[ws-b3]}" 1 "ws-b3 after b1 changed"
expect "$pid" 2 "the original after its branches changed"               # original at step 3
# The user's directory was never written.
[[ $(ls "$dir") == README ]] || fail "DIR changed: $(ls -la "$dir")"

# A branch is a session: exec, snap, restore inside it.
e=$("$FP" exec ws-b1 -c 'cat step-3.txt; ls /proc | grep -c "^[0-9]"') || fail "exec in ws-b1: $e"
[[ $(head -n 1 <<<"$e") == 3 ]] || fail "exec in ws-b1 sees another step-3.txt: $e"
"$FP" snap ws-b1 x3 >/dev/null || fail "snap inside a branch"
expect "${bp[ws-b1]}" 3 "ws-b1 after its snap"                          # -> 4
expect "${bp[ws-b1]}" 4 "ws-b1"                                         # -> 5
"$FP" restore ws-b1 x3 >/dev/null || fail "restore inside a branch"
b1=$(session_field ws-b1 target_pid)
grep -q "^NSpid:[[:space:]]*$b1[[:space:]]*$pid\$" "/proc/$b1/status" || fail "ws-b1 after restore: $(grep NSpid "/proc/$b1/status")"
expect "$b1" 3 "ws-b1 after restore x3"                                 # -> 4

# A branch of a branch: three pid namespaces deep, same pid inside.
out=$("$FP" branch ws-b1 x3 --json) || fail "branch of a branch: $out"
read -r bb bbp bbh < <(python3 -c 'import json,sys; b=json.load(sys.stdin)[0]; print(b["name"], b["pid"], b["helper_pid"])' <<<"$out")
track_pid "$bbh"
[[ $bb == ws-b1-b1 ]] || fail "name of the branch of a branch: $bb"
grep -q "^NSpid:[[:space:]]*$bbp[[:space:]]*$pid\$" "/proc/$bbp/status" || fail "$bb NSpid: $(grep NSpid "/proc/$bbp/status")"
expect "$bbp" 3 "$bb from x3"                                           # -> 4
expect "$b1" 4 "ws-b1 after its branch moved on"

# tree --json: the original, its snapshot, its branches and theirs.
"$FP" tree ws --json | python3 -c '
import json, sys
t = json.load(sys.stdin)
assert t["name"] == "ws" and t["branch_of"] is None and t["state"] == "running", t
s0 = [s for s in t["snapshots"] if s["name"] == "s0"][0]
assert s0["bytes"] > 0 and s0["pages"] > 0 and s0["hot"] is False and s0["parent"] is None, s0
br = {b["name"]: b for b in s0["branches"]}
assert sorted(br) == ["ws-b1", "ws-b2", "ws-b3"], br
b1 = br["ws-b1"]
assert b1["branch_of"] == {"session": "ws", "snapshot": "s0"}, b1
x3 = [s for s in b1["snapshots"] if s["name"] == "x3"][0]
assert [b["name"] for b in x3["branches"]] == ["ws-b1-b1"], x3
assert x3["branches"][0]["branch_of"] == {"session": "ws-b1", "snapshot": "x3"}
' || fail "tree --json: $("$FP" tree ws --json)"
"$FP" tree ws | grep -q "branch from x3: ws-b1-b1" || fail "tree: $("$FP" tree ws)"

# Errors leave nothing behind: a missing snapshot, and a restore that
# fails inside the new namespaces (all or none with -n).
err=$("$FP" branch ws nosuch 2>&1); rc=$?
[[ $rc == 3 && $err == *"no complete snapshot 'nosuch'"* ]] || fail "branch of a missing snapshot: exit $rc: $err"
err=$(FORKPOINT_RESTORE_FAIL_AT=registers "$FP" branch ws s0 -n 2 --name broken 2>&1) && fail "a branch failing on purpose succeeded"
[[ $err == *"branch 'broken-"* ]] || fail "failed branch message: $err"
[[ ! -e $FORKPOINT_HOME/sessions/broken-1 && ! -e $FORKPOINT_HOME/sessions/broken-2 ]] ||
	fail "a failed branch left its directory: $(ls "$FORKPOINT_HOME/sessions")"
# Stopping the original leaves its branches running, and its snapshots can
# still be branched; rm + gc of s0 keeps the layers its branches stand on.
oh=$(session_field ws helper_pid)
"$FP" stop ws || fail "stop ws"
wait_for 20 bash -c "! kill -0 $oh 2>/dev/null" || fail "the original's helper did not end"
out=$("$FP" branch ws s0 --name late --json) || fail "branch of a stopped session: $out"
read -r lp lh < <(python3 -c 'import json,sys; b=json.load(sys.stdin)[0]; print(b["pid"], b["helper_pid"])' <<<"$out")
track_pid "$lh"
expect "$lp" 0 "a branch of the stopped original"
"$FP" stop --kill late || fail "stop late"
wait_for 20 bash -c "! kill -0 $lh 2>/dev/null" || fail "late's helper did not end"
"$FP" rm ws s0 || fail "rm s0"
"$FP" gc >/dev/null || fail "gc"
# The failed branches' pins went with their stores; the live ones stay.
pins=$(ls "$FORKPOINT_HOME/sessions/ws/workspace/pins")
[[ $pins == *ws-b2* && $pins != *broken* && $pins != *late* ]] || fail "pins after gc: $pins"
expect "${bp[ws-b2]}" 2 "ws-b2 after the original stopped"              # -> 3
"$FP" snap ws-b2 y3 >/dev/null || fail "snap ws-b2 after rm+gc of s0"
expect "${bp[ws-b2]}" 3 "ws-b2"                                         # -> 4
"$FP" restore ws-b2 y3 >/dev/null || fail "restore ws-b2 after rm+gc of s0"
expect "$(session_field ws-b2 target_pid)" 3 "ws-b2 back at y3"
expect "$bbp" 4 "$bb after the original stopped"

# stop ends a branch and what is inside its namespace.
for n in ws-b1-b1 ws-b1 ws-b2 ws-b3; do
	h=$(session_field "$n" helper_pid)
	"$FP" stop "$n" || fail "stop $n"
	wait_for 20 bash -c "! kill -0 $h 2>/dev/null" || fail "$n's helper did not end"
done
[[ -z $("$FP" ps --json | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)))') ]] ||
	fail "sessions left: $("$FP" ps)"
echo ok
