# Spare branches of a hot snapshot: after `snap --hot` and after each branch,
# a branch's helper is made ahead (its namespaces, /proc, the frozen copy's
# fork), so that `branch` only takes it. A branch taken from a spare proves
# the snapshot's state (memory and workspace files, ct_workspace --no-map:
# a hot fork cannot stand for writable shared memory), runs
# apart from the original and from other branches (spare or not), has its
# own pid namespace and workspace; -n K finds K spares after a -n K; a
# branch of it restores from disk and says why; rm of the snapshot and stop
# of the session end the spares.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid and mount namespaces, overlay)"; exit 77; }
source "$(dirname "$0")/branch_common.inc"
st=$WORK/status
dir=$WORK/project
start_ws_session sp --no-map
pid=$(session_field sp target_pid)
track_pid "$pid"
ready() { # SNAP N: N spares of sp's SNAP ready
	local k n=0
	for k in 1 2 3 4; do [[ -S $FORKPOINT_HOME/sessions/sp/spare.$1.$k.sock ]] && n=$((n + 1)); done
	((n >= $2))
}
spares() { # the spares' helpers: pid 1 of a namespace, of this FORKPOINT_HOME, no session's helper
	local p helpers
	helpers=" $("$FP" ps --json | python3 -c 'import json,sys; print(" ".join(str(s["helper_pid"]) for s in json.load(sys.stdin)))') "
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		grep -qE "^NSpid:[[:space:]]+$p[[:space:]]+1\$" "/proc/$p/status" 2>/dev/null || continue
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "FORKPOINT_HOME=$FORKPOINT_HOME" || continue
		[[ $helpers == *" $p "* ]] || echo "$p"
	done
}
taken() { # SESSION SNAP ARGS...: "name pid ns_pid helper spare" per branch
	local out
	out=$("$FP" branch "$@" --json) || { echo "branch $*: $out" >&2; return 1; }
	python3 -c 'import json,sys
for b in json.load(sys.stdin):
    assert b["hot"], b
    print(b["name"], b["pid"], b["ns_pid"], b["helper_pid"], int(b["spare"]))' <<<"$out"
}

"$FP" snap sp s0 --hot >/dev/null || fail "snap s0 --hot"
expect "$pid" 0 "original"                                              # original at step 1
wait_for 20 ready s0 1 || fail "no spare of s0 after snap --hot: $(ls "$FORKPOINT_HOME/sessions/sp")"

read -r b1 p1 n1 h1 s1 < <(taken sp s0) || fail "branch from a spare"
track_pid "$h1"; track_pid "$p1"
[[ $s1 == 1 ]] || fail "$b1 was not taken from the spare"
[[ $n1 == "$pid" ]] || fail "$b1: pid $n1 inside, the snapshot's was $pid"
grep -q "^NSpid:[[:space:]]*$p1[[:space:]]*$pid\$" "/proc/$p1/status" || fail "$b1 NSpid: $(grep NSpid "/proc/$p1/status")"
[[ $(readlink "/proc/$p1/ns/pid") != "$(readlink "/proc/$pid/ns/pid")" &&
	$(readlink "/proc/$p1/ns/mnt") != "$(readlink "/proc/$pid/ns/mnt")" ]] || fail "$b1 shares a namespace with the original"
expect "$p1" 0 "$b1 from s0"                                            # b1 at step 1
expect "$p1" 1 "$b1"                                                    # b1 at step 2
expect "$pid" 1 "the original after $b1 moved on"                       # original at step 2

# The next branch finds a new spare: it is apart from the first one.
wait_for 20 ready s0 1 || fail "no spare made again after a branch"
read -r b2 p2 n2 h2 s2 < <(taken sp s0) || fail "second branch"
track_pid "$h2"; track_pid "$p2"
[[ $s2 == 1 ]] || fail "$b2 was not taken from the spare"
[[ $(readlink "/proc/$p2/ns/mnt") != "$(readlink "/proc/$p1/ns/mnt")" ]] || fail "$b2 and $b1 share a mount namespace"
expect "$p2" 0 "$b2 from s0, after $b1 wrote"
expect "$p1" 2 "$b1 after $b2 started"

# -n 2 takes the one spare and forks the other; then two spares wait.
declare -A kp
while read -r n p nsp h s; do
	track_pid "$h"; track_pid "$p"
	kp[$n]=$p
done < <(taken sp s0 -n 2) || fail "branch -n 2"
[[ ${#kp[@]} == 2 ]] || fail "branches: ${!kp[*]}"
for n in "${!kp[@]}"; do expect "${kp[$n]}" 0 "$n from s0"; done
wait_for 20 ready s0 2 || fail "not two spares after -n 2: $(ls "$FORKPOINT_HOME/sessions/sp")"
declare -A kq
while read -r n p nsp h s; do
	track_pid "$h"; track_pid "$p"
	[[ $s == 1 ]] || fail "$n was not taken from a spare"
	kq[$n]=$p
done < <(taken sp s0 -n 2) || fail "branch -n 2 with two spares"
for n in "${!kq[@]}"; do expect "${kq[$n]}" 0 "$n (spare) from s0"; done
for n in "${!kq[@]}"; do expect "${kq[$n]}" 1 "$n (spare)"; done
for n in "${!kp[@]}"; do expect "${kp[$n]}" 1 "$n after the spares moved on"; done
expect "$pid" 2 "the original after all its branches"
[[ $(ls "$dir") == README ]] || fail "DIR changed: $(ls -la "$dir")"

# A spare's branch is a session; its own hot snapshot branches from disk.
"$FP" snap "$b1" y --hot >/dev/null || fail "snap --hot in $b1"
read -r bb bbp bbh bbhot bbwhy < <(branch_json "$b1" y) || fail "branch of a spare's branch"
track_pid "$bbh"; track_pid "$bbp"
[[ $bbhot == 0 && $bbwhy == *"itself a branch"* ]] || fail "$bb: hot=$bbhot why=$bbwhy"
expect "$bbp" 3 "$bb from y"
expect "$p1" 3 "$b1 after its branch"

# rm releases the snapshot's frozen copy and its spares; stop the others.
[[ -n $(spares) ]] || fail "no spare process found"
"$FP" rm sp s0 || fail "rm s0"
wait_for 10 bash -c "! ls '$FORKPOINT_HOME/sessions/sp' | grep -q '^spare\.s0\.'" || fail "rm s0 left spares: $(ls "$FORKPOINT_HOME/sessions/sp")"
wait_for 10 test -z "$(spares)" || fail "rm s0 left spare processes: $(spares)"
"$FP" snap sp s1 --hot >/dev/null || fail "snap s1 --hot"
wait_for 20 ready s1 1 || fail "no spare of s1"
"$FP" stop sp || fail "stop sp"
wait_for 10 test -z "$(spares)" || fail "stop left spare processes: $(spares)"
expect "$p1" 4 "$b1 after the original stopped"
for n in "$b1" "$b2" "$bb" "${!kp[@]}" "${!kq[@]}"; do "$FP" stop "$n" >/dev/null || fail "stop $n"; done
echo ok
