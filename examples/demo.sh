#!/usr/bin/env bash
# The demo: run the bundled counter under forkpoint, look at it, snapshot it
# while it runs, send it back to the snapshot, and show CRIU reads the images.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FP=$ROOT/build/bin/forkpoint
export FORKPOINT_HOME=${FORKPOINT_HOME:-$(mktemp -d /tmp/forkpoint-demo.XXXXXX)}
out=$FORKPOINT_HOME/sessions/demo/output.log

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Waits (up to 10 s) until the counter has printed tick N or later.
wait_tick() {
	for _ in $(seq 1000); do
		[[ -f $out ]] && (($(grep -c '^tick' "$out") >= $1)) && return 0
		sleep 0.01
	done
	echo "the counter did not reach tick $1" >&2
	return 1
}

step "forkpoint run --detach: the counter starts under a session helper"
"$FP" run --detach --name demo -- "$ROOT/build/examples/counter"
wait_tick 3

step "forkpoint ps"
"$FP" ps

step "forkpoint inspect demo: threads and stacks, maps, fds, the shim's table vs /proc"
"$FP" inspect demo | sed -n '1,22p;/^shim/,$p'

step "forkpoint snap demo before: a snapshot while it keeps running"
"$FP" snap demo before --json
tail -n 1 "$out"
wait_tick "$(($(grep -c '^tick' "$out") + 3))"
echo "... it went on:"
tail -n 1 "$out"

step "forkpoint list demo"
"$FP" list demo

step "forkpoint restore demo before: back to the snapshot (native restorer, same pid)"
"$FP" restore demo before --json
wait_tick "$(($(grep -c '^tick' "$out") + 2))"
echo "the counter continues from the snapshot's value and finds its memory intact:"
tail -n 6 "$out"

step "crit (CRIU's own decoder) reads forkpoint's images"
crit decode -i "$FORKPOINT_HOME/sessions/demo/snapshots/before/pstree.img" --pretty

step "forkpoint stop demo"
"$FP" stop demo
