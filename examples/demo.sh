#!/usr/bin/env bash
# The demo: run the bundled counter program under forkpoint, look at it, stop it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FP=$ROOT/build/bin/forkpoint
export FORKPOINT_HOME=${FORKPOINT_HOME:-$(mktemp -d /tmp/forkpoint-demo.XXXXXX)}
work=$(mktemp -d /tmp/forkpoint-demo-work.XXXXXX)
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "forkpoint run --detach: start the counter under a session helper"
name=$("$FP" run --detach --name demo -- "$ROOT/build/examples/counter" "$work/counter.log")
echo "session: $name"

# Wait (with a deadline) until the counter has ticked a few times.
for _ in $(seq 500); do
	[[ -f $work/counter.log && $(wc -l <"$work/counter.log") -ge 3 ]] && break
	sleep 0.02
done

step "forkpoint ps"
"$FP" ps

step "forkpoint inspect demo"
"$FP" inspect demo

step "forkpoint snap demo: snapshot it twice while it keeps running"
"$FP" snap demo --json
"$FP" snap demo after-a-while

step "forkpoint list demo"
"$FP" list demo

step "crit (CRIU's own decoder) reads forkpoint's images"
crit decode -i "$FORKPOINT_HOME/sessions/demo/snapshots/snap-1/pstree.img" --pretty | head -n 20

step "the counter kept running and checking itself"
tail -n 2 "$FORKPOINT_HOME/sessions/demo/output.log"

step "forkpoint stop demo"
"$FP" stop demo
echo "the counter's own output (session log):"
tail -n 3 "$FORKPOINT_HOME/sessions/demo/output.log" 2>/dev/null || true
rm -rf "$work"
