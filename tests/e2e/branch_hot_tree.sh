# Hot branches of a process tree: ct_explore (three threads, a forked child
# that checks its parent, changing mappings, a file in its workspace) is
# snapped with --hot and branched -n 3 from its frozen copy: each branch's
# root is forked from the copy, its child is restored as the root's child
# with its pid. Every branch proves its memory, threads, fds, workspace file
# and its child (memory, step and parent); the original keeps running; the
# branches step apart without seeing each other's memory or files; a
# snapshot and a rollback work inside a branch, and so does a branch of a
# branch. ct_tree (a grandchild, process groups, a shared file offset) and
# ct_zombies (zombie and stopped children) branch hot too.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid and mount namespaces, overlay)"; exit 77; }

source "$(dirname "$0")/branch_common.inc"
at() { # STATUS PID S: the process verifies itself at step S
	local v
	v=$(ct_verify "$1" "$2") || fail "verify $2 (want step $3): $v"
	[[ $v == *"step=$3" ]] || fail "$2: want step $3: $v"
}
step() { # STATUS PID: one step, waited for
	local n
	n=$(grep -c "^stepped .* pid=$3\$" "$1")
	kill -USR1 "$2"
	wait_for 20 bash -c "(( \$(grep -c '^stepped .* pid=$3\$' '$1') > $n ))" || fail "no step of $2: $(tail -n 3 "$1")"
}
kid_of() { # PID: its only child, and that child's parent as it sees it, must be PID
	local k c
	# a hot snapshot's frozen copy (exit signal 0) is a child too: not counted
	k=$(for c in $(cat "/proc/$1/task/$1/children"); do
		[[ $(sed 's/.*) //' "/proc/$c/stat" | awk '{print $36}') == 0 ]] || printf '%s ' "$c"
	done)
	[[ $k =~ ^[0-9]+\ ?$ ]] || fail "$1 has children '$k', want one"
	k=${k% }
	[[ $(awk '/^PPid/{print $2}' "/proc/$k/status") == "$1" ]] || fail "child $k of $1 has another parent"
	echo "$k"
}

st=$WORK/explore.status
ws=$WORK/ws
mkdir -p "$ws"
"$FP" run --detach --name ex --workdir "$ws" -- "$T/ct_explore" "$st" --mib=16 --files="$ws" >/dev/null || fail "run"
track_pid "$(session_field ex helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "ct_explore not ready: $(cat "$st")"
pid=$(session_field ex target_pid)
kid=$(kid_of "$pid")
step "$st" "$pid" "$pid"
step "$st" "$pid" "$pid"
at "$st" "$pid" 2
out=$("$FP" snap ex s2 --hot --json) || fail "snap --hot: $out"
python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["hot"] is True and s["processes"] == 2, s' <<<"$out" ||
	fail "snap --hot of a tree: $out"
step "$st" "$pid" "$pid" # the original moves on

declare -A bp
while read -r n p h hot why; do
	track_pid "$h"; track_pid "$p"
	[[ $hot == 1 ]] || fail "$n of a tree was not forked from memory: $why"
	bp[$n]=$p
done < <(branch_json ex s2 -n 3) || fail "branch -n 3"
[[ ${#bp[@]} == 3 ]] || fail "branches: ${!bp[*]}"
for n in "${!bp[@]}"; do
	p=${bp[$n]}
	grep -q "^NSpid:[[:space:]]*$p[[:space:]]*$pid\$" "/proc/$p/status" || fail "$n NSpid: $(grep NSpid "/proc/$p/status")"
	[[ $(awk '/^Threads/{print $2}' "/proc/$p/status") == 3 ]] || fail "$n has $(awk '/^Threads/{print $2}' "/proc/$p/status") threads"
	k=$(kid_of "$p")
	grep -q "^NSpid:[[:space:]]*$k[[:space:]]*$kid\$" "/proc/$k/status" || fail "$n's child NSpid: $(grep NSpid "/proc/$k/status")"
	at "$st" "$p" 2 # memory, areas, threads' stacks, the child (step, memory, parent), fds, offsets, explore.log
	grep -q "hot snapshot" "$FORKPOINT_HOME/sessions/$n/restore.log" || fail "$n: restore.log says no hot fork"
done
at "$st" "$pid" 3

# Apart: each branch steps a different number of times; each then proves its
# own step, in memory, in its child and in its workspace's explore.log.
names=($(printf '%s\n' "${!bp[@]}" | sort))
for i in 0 1 2; do
	for ((k = 0; k < i + 1; k++)); do step "$st" "${bp[${names[$i]}]}" "$pid"; done
done
for i in 0 1 2; do at "$st" "${bp[${names[$i]}]}" $((3 + i)); done
at "$st" "$pid" 3

# Inside a branch: a snapshot, a step, a rollback.
b=${names[0]}
"$FP" snap "$b" x --hot >/dev/null || fail "snap in the hot branch"
step "$st" "${bp[$b]}" "$pid"
"$FP" restore "$b" x >/dev/null || fail "restore in the hot branch"
p=$(session_field "$b" target_pid)
at "$st" "$p" 3
kid_of "$p" >/dev/null

# A branch of the branch (hot in the branch, restored from disk: its copies
# live in the branch's pid namespace) proves the same.
read -r n2 p2 h2 hot2 why2 < <(branch_json "$b" x) || fail "branch of a branch"
track_pid "$h2"; track_pid "$p2"
[[ $hot2 == 1 || $why2 != - ]] || fail "$n2: neither hot nor a reason"
at "$st" "$p2" 3
kid_of "$p2" >/dev/null
at "$st" "$p" 3

# --- ct_tree: a grandchild, groups and sessions, one shared file offset -------
ts=$WORK/tree.status
mkdir -p "$WORK/tree"
"$FP" run --detach --name tr -- "$T/ct_tree" "$ts" --dir="$WORK/tree" --same-pid >/dev/null || fail "run ct_tree"
track_pid "$(session_field tr helper_pid)"
wait_for 20 grep -q '^ready' "$ts" || fail "ct_tree not ready: $(cat "$ts")"
tpid=$(session_field tr target_pid)
"$FP" snap tr s --hot >/dev/null || fail "snap tr --hot"
read -r n p h hot why < <(branch_json tr s) || fail "branch of a hot tree"
track_pid "$h"; track_pid "$p"
[[ $hot == 1 ]] || fail "ct_tree was not forked from memory: $why"
v=$(ct_verify "$ts" "$p") || fail "the hot branch of ct_tree: $v"
v=$(ct_verify "$ts" "$tpid") || fail "ct_tree after its branch: $v"

n3=$n

# --- ct_zombies: two zombie children and a stopped one ------------------------
zs=$WORK/zombies.status
"$FP" run --detach --name zo -- "$T/ct_zombies" "$zs" >/dev/null || fail "run ct_zombies"
track_pid "$(session_field zo helper_pid)"
wait_for 20 grep -q '^ready' "$zs" || fail "ct_zombies not ready: $(cat "$zs")"
"$FP" snap zo s --hot >/dev/null || fail "snap zo --hot"
read -r n p h hot why < <(branch_json zo s) || fail "branch of ct_zombies"
track_pid "$h"; track_pid "$p"
[[ $hot == 1 ]] || fail "ct_zombies was not forked from memory: $why"
v=$(ct_verify "$zs" "$p") || fail "the hot branch of ct_zombies: $v"
[[ $(for k in $(cat "/proc/$p/task/$p/children"); do awk '/^State/{print $2}' "/proc/$k/status"; done | sort | tr -d '\n') == TZZ ]] ||
	fail "the branch's children are not a stopped one and two zombies"

for s in "$n" "$n2" "$n3" "${names[@]}" ex tr zo; do "$FP" cleanup "$s" >/dev/null 2>&1; done
echo ok
