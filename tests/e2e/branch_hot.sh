# Hot snapshots and branches forked from them: `snap --hot` keeps a frozen
# copy-on-write copy of the process in the session's helper; `branch` then
# forks it into the branch's namespaces (no page copied) and restores the
# rest. Each branch proves its memory, threads and fds (self-checking
# targets), K=3 branches run apart from each other and from the original;
# tree shows which snapshots are hot, --hot-limit evicts the oldest, rm
# releases a copy, stop and cleanup leave no frozen copy behind; a snapshot
# that cannot be forked (shared writable memory) branches from disk and says
# why. Process trees: branch_hot_tree.sh.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid and mount namespaces)"; exit 77; }

copies() { # SESSION: the pids of its frozen copies, from $SESSION/hot
	local f=$FORKPOINT_HOME/sessions/$1/hot
	[[ -e $f ]] && sed 's/^[^ ]*//' "$f" | tr ' ' '\n' | sed -n 's/.*://p'
	true
}
alive_copy() { # PID: a frozen copy still there (stopped, not a zombie)
	[[ -e /proc/$1/stat ]] && [[ $(awk '{print $3}' "/proc/$1/stat") != Z ]]
}
source "$(dirname "$0")/branch_common.inc"

# --- threads and fds: ct_threads ---------------------------------------------
st=$WORK/threads.status
"$FP" run --detach --name th -- "$T/ct_threads" "$st" >/dev/null || fail "run ct_threads"
track_pid "$(session_field th helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "ct_threads not ready: $(cat "$st")"
pid=$(session_field th target_pid)
track_pid "$pid"
out=$("$FP" snap th t0 --hot --json) || fail "snap --hot: $out"
python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["hot"] is True, s' <<<"$out" || fail "snap --hot --json: $out"
c0=$(copies th)
[[ -n $c0 ]] && alive_copy "$c0" || fail "no frozen copy kept: '$c0'"
"$FP" tree th --json | python3 -c 'import json,sys
t=json.load(sys.stdin); assert [s["hot"] for s in t["snapshots"]] == [True], t' || fail "tree: $("$FP" tree th)"
"$FP" tree th | grep -q "t0 .* hot" || fail "tree text: $("$FP" tree th)"

read -r bn bp bh bhot bwhy < <(branch_json th t0) || fail "branch of a hot snapshot"
track_pid "$bh"; track_pid "$bp"
[[ $bhot == 1 ]] || fail "branch of a hot snapshot was not forked from memory: $bwhy"
grep -q "^NSpid:[[:space:]]*$bp[[:space:]]*$pid\$" "/proc/$bp/status" || fail "$bn NSpid: $(grep NSpid "/proc/$bp/status")"
v=$(ct_verify "$st" "$bp") || fail "$bn (hot) failed its check: $v"
[[ $(grep -c '^Tgid\|^Threads' "/proc/$bp/status") == 2 && $(awk '/^Threads/{print $2}' "/proc/$bp/status") == 9 ]] ||
	fail "$bn has $(awk '/^Threads/{print $2}' "/proc/$bp/status") threads, want 9"
# The branch shares no open file with the original: its pipes are its own.
for fd in /proc/$bp/fd/*; do
	l=$(readlink "$fd")
	[[ $l != pipe:* ]] && continue
	for ofd in /proc/$pid/fd/*; do [[ $(readlink "$ofd") != "$l" ]] || fail "$bn shares $l with the original"; done
done
v=$(ct_verify "$st" "$pid") || fail "the original after a hot branch: $v"
alive_copy "$c0" || fail "the frozen copy went away with the branch"
# A branch from a hot snapshot is a session: a snapshot and a rollback in it.
"$FP" snap "$bn" x >/dev/null || fail "snap in the hot branch"
"$FP" restore "$bn" x >/dev/null || fail "restore in the hot branch"
v=$(ct_verify "$st" "$(session_field "$bn" target_pid)") || fail "$bn after its own restore: $v"

# --- memory, K=3 apart: ct_compute ------------------------------------------
cs=$WORK/compute.status
"$FP" run --detach --name cm -- "$T/ct_compute" "$cs" --iterations=100000000000 --mib=16 >/dev/null || fail "run ct_compute"
track_pid "$(session_field cm helper_pid)"
wait_for 20 grep -q '^ready' "$cs" || fail "ct_compute not ready: $(cat "$cs")"
cpid=$(session_field cm target_pid)
"$FP" snap cm c0 --hot >/dev/null || fail "snap cm --hot"
declare -A kp
while read -r n p h hot why; do
	track_pid "$h"; track_pid "$p"
	[[ $hot == 1 ]] || fail "$n not forked from memory: $why"
	kp[$n]=$p
done < <(branch_json cm c0 -n 3) || fail "branch -n 3"
[[ ${#kp[@]} == 3 ]] || fail "branches: ${!kp[*]}"
# Each computes on in its own memory (a table shared with another would break
# its running-sum invariant), twice, and so does the original.
for round in 1 2; do
	for n in "${!kp[@]}"; do v=$(ct_verify "$cs" "${kp[$n]}") || fail "$n round $round: $v"; done
	v=$(ct_verify "$cs" "$cpid") || fail "the original, round $round: $v"
done
steps=$(grep '^verify ' "$cs" | sed -n 's/.* step=\([0-9]*\).*/\1/p' | sort -u | wc -l)
(( steps >= 3 )) || fail "the branches did not compute apart: $(grep '^verify ' "$cs")"

# --- limit, rm, stop, cleanup -------------------------------------------------
cc0=$(grep '^c0 ' "$FORKPOINT_HOME/sessions/cm/hot" | sed 's/.*://')
alive_copy "$cc0" || fail "c0's copy is not there"
"$FP" snap cm c1 --hot-limit 2 >/dev/null || fail "snap c1"
"$FP" snap cm c2 --hot-limit 2 >/dev/null || fail "snap c2"
hot=$("$FP" tree cm --json | python3 -c 'import json,sys
print(" ".join(s["name"] for s in json.load(sys.stdin)["snapshots"] if s["hot"]))')
[[ $hot == "c1 c2" ]] || fail "hot after --hot-limit 2: '$hot'"
# evicted: killed before the reply, its exit waited for later
wait_for 10 bash -c "! [[ -e /proc/$cc0/stat && \$(awk '{print \$3}' /proc/$cc0/stat) != Z ]]" ||
	fail "c0's copy $cc0 still there after its eviction"
c1=$(grep '^c1 ' "$FORKPOINT_HOME/sessions/cm/hot" | sed 's/.*://')
alive_copy "$c1" || fail "c1's copy is not there"
"$FP" rm cm c1 || fail "rm c1"
wait_for 10 bash -c "! [[ -e /proc/$c1/stat && \$(awk '{print \$3}' /proc/$c1/stat) != Z ]]" || fail "rm left c1's copy $c1"
left=$(copies cm)
[[ $left != *"$c1"* && -n $left ]] || fail "copies after rm c1: '$left'"

all="$(copies th) $(copies cm)"
"$FP" stop th || fail "stop th"
# (a branch's processes carry the original's session mark in their
# environment, as restored ones do: cleanup of the original would take them
# for its own)
for n in "${!kp[@]}"; do "$FP" cleanup "$n" >/dev/null || fail "cleanup $n"; done
"$FP" cleanup cm >/dev/null || fail "cleanup cm"
for c in $all; do
	wait_for 10 bash -c "! [[ -e /proc/$c/stat && \$(awk '{print \$3}' /proc/$c/stat) != Z ]]" || fail "frozen copy $c left behind"
done

# --- a tree that a fork cannot copy: hot, but branched from disk ------------
# (ct_shmem's parent and child share writable memory, which a fork of the
# frozen copy would share with the original)
ts=$WORK/shm.status
"$FP" run --detach --name tr -- "$T/ct_shmem" "$ts" >/dev/null || fail "run ct_shmem"
track_pid "$(session_field tr helper_pid)"
wait_for 20 grep -q '^ready' "$ts" || fail "ct_shmem not ready: $(cat "$ts")"
"$FP" snap tr s --hot >/dev/null || fail "snap tr --hot"
read -r n p h hot why < <(branch_json tr s) || fail "branch of a hot tree with shared memory"
track_pid "$h"
[[ $hot == 0 && $why == *"shared memory"* ]] || fail "hot branch of shared memory: hot=$hot why=$why"
v=$(ct_verify "$ts" "$p") || fail "the cold branch of ct_shmem: $v"
for s in "$n" "$bn" th-b1 cm-b1 cm-b2 cm-b3 tr; do "$FP" cleanup "$s" >/dev/null 2>&1; done
echo ok
