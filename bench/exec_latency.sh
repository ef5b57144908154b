#!/usr/bin/env bash
# Shell-session latencies (issue 13), side by side with checkpoint-lite's
# published figures: an empty exec (`true`), a snapshot of an idle shell
# session, a restore of it, and the exec right after. Medians over N rounds
# (EXEC_BENCH_RUNS, default 30), wall clock of the forkpoint command as a
# caller sees it. Writes bench/results/exec-latency-<time>.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FP=${FP_BUILD:-$ROOT/build}/bin/forkpoint
N=${EXEC_BENCH_RUNS:-30}
[[ -x $FP ]] || { echo "bench: build first (make)" >&2; exit 1; }
export FORKPOINT_HOME=$(mktemp -d /tmp/fp-exec-bench.XXXXXX)
trap '"$FP" stop --kill xb >/dev/null 2>&1 || true; rm -rf "$FORKPOINT_HOME"' EXIT

ms() { local t0=$(date +%s%N); "$@" >/dev/null; echo $(( ($(date +%s%N) - t0) / 1000 )); }
med() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9)>0?int(NR*0.9):1]; printf "%.2f %.2f", m/1000, p/1000}'; }

"$FP" run --shell --name xb >/dev/null
"$FP" exec xb -c 'cd /tmp; export A=1' >/dev/null
exec_us=() snap_us=() rest_us=() after_us=() inner_us=() ps_us=()
for i in $(seq 1 "$N"); do
	exec_us+=("$(ms "$FP" exec xb -- true)")
	ps_us+=("$(ms "$FP" ps)")
	# the helper's own measure: from typing the command to its status
	d=$("$FP" exec xb --json -- true | sed 's/.*"duration_ms": \([0-9]*\).*/\1/')
	inner_us+=("$((d * 1000))")
	snap_us+=("$(ms "$FP" snap xb "s$i")")
	rest_us+=("$(ms "$FP" restore xb "s$i")")
	after_us+=("$(ms "$FP" exec xb -- true)")
	"$FP" rm xb "s$i" >/dev/null
done
read -r e50 e90 <<<"$(printf '%s\n' "${exec_us[@]}" | med)"
read -r s50 s90 <<<"$(printf '%s\n' "${snap_us[@]}" | med)"
read -r r50 r90 <<<"$(printf '%s\n' "${rest_us[@]}" | med)"
read -r a50 a90 <<<"$(printf '%s\n' "${after_us[@]}" | med)"
read -r i50 i90 <<<"$(printf '%s\n' "${inner_us[@]}" | med)"
read -r p50 p90 <<<"$(printf '%s\n' "${ps_us[@]}" | med)"
out=$ROOT/bench/results/exec-latency-$(date -u +%Y%m%d-%H%M%S).md
{
	echo "# Shell session latencies ($(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD), $N rounds, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg))"
	echo
	echo "| step | forkpoint median ms | p90 ms | checkpoint-lite (published) |"
	echo "|---|---|---|---|"
	echo "| exec \`true\` (round trip, whole command) | $e50 | $e90 | - |"
	echo "| of which in the helper and the shell (--json duration_ms, 1 ms steps) | $i50 | $i90 | - |"
	echo "| for scale: \`forkpoint ps\` (start-up of the command alone) | $p50 | $p90 | - |"
	echo "| snap of an idle shell session | $s50 | $s90 | ~56 (snapshot of a bash shell); Waypoint fork ~137 |"
	echo "| restore of it (incl. saving the state it replaces) | $r50 | $r90 | - |"
	echo "| exec \`true\` right after the restore | $a50 | $a90 | - |"
} | tee "$out"
