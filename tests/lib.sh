# Helpers for tests/e2e/*.sh. Source it; it sets FP (the forkpoint binary),
# a private FORKPOINT_HOME, and cleans up on exit.
set -u
ROOT=${FP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD=${FP_BUILD:-$ROOT/build}
FP=$BUILD/bin/forkpoint
T=$BUILD/tests/targets
WORK=$(mktemp -d /tmp/fp-e2e.XXXXXX)
export FORKPOINT_HOME=$WORK/home
_fp_cleanup_pids=()
cleanup() {
	local rc=$? p s
	# the sessions a test left behind (it failed half way): their
	# processes too, which a pid tracked inside $(...) never reached
	if [[ -d $FORKPOINT_HOME/sessions ]]; then
		for s in $("$FP" ps --json 2>/dev/null |
			python3 -c 'import json, sys; print(" ".join(x["name"] for x in json.load(sys.stdin)))' 2>/dev/null); do
			timeout -s KILL 30 "$FP" stop --kill "$s" >/dev/null 2>&1
		done
	fi
	# the tracked processes and everything they forked (a target's child
	# outlives a kill of its parent), the tree found before any dies
	for p in "${_fp_cleanup_pids[@]}" $(_fp_descendants "${_fp_cleanup_pids[@]}"); do kill -9 "$p" 2>/dev/null; done
	# FP_KEEP_WORK=1: a failed test's directory (logs, snapshots) is kept;
	# FP_KEEP_WORK=all: every test's
	if [[ ${FP_KEEP_WORK:-} == all || (-n ${FP_KEEP_WORK:-} && $rc != 0) ]]; then
		echo "kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
# _fp_descendants PID...: every live descendant of the PIDs (from /proc)
_fp_descendants() {
	(($#)) || return 0
	python3 - "$@" <<'PY' 2>/dev/null
import os, sys
kids = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
todo, seen = [int(p) for p in sys.argv[1:] if p.isdigit()], set()
while todo:
    for k in kids.get(todo.pop(), []):
        if k not in seen:
            seen.add(k)
            todo.append(k)
print(" ".join(map(str, sorted(seen))))
PY
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_for DEADLINE_SECONDS CMD...: polls CMD until it succeeds or the deadline passes.
wait_for() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000)); shift
	until "$@"; do
		(($(date +%s%N) > deadline)) && return 1
		sleep 0.01
	done
}
track_pid() { _fp_cleanup_pids+=("$1"); }

# tree_ready STATUS: once the ct_tree started with STATUS is ready, its
# root in $pid and its children in $kids, all tracked for the cleanup;
# tree_gone: none of them is left.
tree_ready() {
	wait_for 20 grep -qs '^ready' "$1" || fail "ct_tree not ready: $(cat "$1" 2>/dev/null)"
	pid=$(awk '/^ready/{print $2}' "$1")
	kids=$(awk '/^info child/{printf "%s ", $5}' "$1")
	track_pid "$pid"
	for k in $kids; do track_pid "$k"; done
}
tree_gone() { for p in "$pid" $kids; do [[ ! -e /proc/$p ]] || return 1; done; }
# proc_state PID...: what each process and thread is doing, for a failure
# message about a process that does not answer (stopped, blocked, where).
proc_state() {
	local p t
	for p in "$@"; do
		for t in /proc/"$p"/task/*; do
			[[ -d $t ]] || continue
			echo "  ${t#/proc/}: $(awk '/^(State|SigQ|SigPnd|ShdPnd|SigBlk|SigCgt|TracerPid):/ {printf "%s %s ", $1, $2}' "$t/status" 2>/dev/null)" \
				"wchan=$(cat "$t/wchan" 2>/dev/null) syscall=$(cat "$t/syscall" 2>/dev/null)"
			sed 's/^/      /' "$t/stack" 2>/dev/null | head -n 12
		done
	done
}
# ct_* target protocol (tests/targets/README.md): ask PID to verify itself and
# wait for its "verify N ok|FAIL" line in STATUS. Prints the line; fails on FAIL.
ct_verify() { # STATUS PID
	local status=$1 pid=$2 before
	before=$(grep -c '^verify ' "$status")
	kill -USR2 "$pid" || { echo "cannot signal $pid"; return 1; }
	wait_for 30 bash -c "(( \$(grep -c '^verify ' '$status') > $before ))" || {
		echo "no verify line from $pid; its state:"
		proc_state "$pid" $(_fp_descendants "$pid")
		return 1
	}
	local line
	line=$(grep '^verify ' "$status" | tail -n 1)
	echo "$line"
	[[ $line == *" ok "* || $line == *" ok" ]]
}
# Session field from `forkpoint ps --json`.
session_field() { # NAME FIELD
	"$FP" ps --json | python3 -c "import json,sys; print([s['$2'] for s in json.load(sys.stdin) if s['name']=='$1'][0])"
}

# The CRIU forkpoint itself would use (`forkpoint doctor --criu-path`: the
# same candidates and verdicts as the product, so a CRIU that passes `criu
# check` but hangs is never used by a test). Sets CRIU; when there is none,
# CRIU is empty and CRIU_WHY says why.
CRIU= CRIU_WHY=
find_criu() {
	local out
	if out=$("$FP" doctor --criu-path 2>&1); then
		CRIU=$out CRIU_WHY=
		return 0
	fi
	CRIU= CRIU_WHY=$(tr '\n' ' ' <<<"$out")
	return 1
}
# need_criu: the whole test needs a working CRIU; without one it is skipped
# (exit 77) with the reason.
need_criu() { find_criu || { echo "no working CRIU: $CRIU_WHY"; exit 77; }; }
# skip_part WHAT [WHY]: one part of a test cannot run here (WHY; by default:
# it needs CRIU and there is none); tests/run.sh counts each such part as
# skipped.
skip_part() {
	local why=${2:-"no working CRIU: $CRIU_WHY"}
	echo "$1: ${why%%:*}" >>"${FP_SKIP_PARTS:-/dev/null}"
	echo "skipped: $1 ($why)"
}
# criu_run ARGS...: CRIU under a deadline that ends in SIGKILL (CRIU 4.1.1
# ignores SIGTERM while it hangs).
criu_run() { timeout -s KILL "${FP_CRIU_TIMEOUT:-120}" "$CRIU" "$@"; }
