#!/usr/bin/env bash
# Shell-session latencies (issue 13), side by side with checkpoint-lite's
# published figures: an empty exec (`true`), a snapshot of an idle shell
# session, a restore of it, and the exec right after. Medians over N rounds
# (EXEC_BENCH_RUNS, default 30), wall clock of the forkpoint command as a
# caller sees it, taken with bash's $EPOCHREALTIME (no process of its own
# inside the interval). Wall clock depends on the machine's load (printed);
# the CPU time each step costs (the command, the helper, the shell) does
# not, so it is reported too. The same steps are then measured through the
# library in one long-lived client, as an agent drives a session (no
# process start per call): bench/session_latency.c (C) and
# bench/session_latency.py (the Python binding). Writes
# bench/results/exec-latency-<time>.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FP=${FP_BUILD:-$ROOT/build}/bin/forkpoint
N=${EXEC_BENCH_RUNS:-30}
[[ -x $FP ]] || { echo "bench: build first (make)" >&2; exit 1; }
export FORKPOINT_HOME=$(mktemp -d /tmp/fp-exec-bench.XXXXXX)
trap '"$FP" cleanup --force xb >/dev/null 2>&1 || true; rm -rf "$FORKPOINT_HOME"' EXIT
TCK=$(getconf CLK_TCK)

now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
us() { local t0 t1; t0=$(now_us); "$@" >/dev/null; t1=$(now_us); echo $((t1 - t0)); }
med() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9)>0?int(NR*0.9):1]; printf "%.2f %.2f", m/1000, p/1000}'; }
# CPU ticks (user+system) of a process and its reaped children.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
"$FP" run --shell --name xb >/dev/null
"$FP" exec xb -c 'cd /tmp; export A=1' >/dev/null
helper=$(awk -F= '/^helper_pid=/{print $2}' "$FORKPOINT_HOME/sessions/xb/session.meta")
shell=$(awk -F= '/^target_pid=/{print $2}' "$FORKPOINT_HOME/sessions/xb/session.meta")
# CPU per exec: N execs in a row (the helper's and the shell's in clock
# ticks over all of them; the command's own from perf stat when there is perf).
h0=$(ticks "$helper") s0=$(ticks "$shell")
exec_us=()
for i in $(seq 1 "$N"); do exec_us+=("$(us "$FP" exec xb -- true)"); done
h1=$(ticks "$helper") s1=$(ticks "$shell")
cpu() { awk -v d="$1" -v n="$N" -v t="$TCK" 'BEGIN {printf "%.2f", d * 1000 / t / n}'; }
cli_cpu=-
if command -v perf >/dev/null && perf stat -x, -e task-clock true >/dev/null 2>&1; then
	cli_cpu=$(for i in $(seq 1 "$N"); do perf stat -x, -e task-clock -- "$FP" exec xb -- true 2>&1 >/dev/null | cut -d, -f1; done |
		sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')
fi
true_us=() inner_us=() snap_us=() rest_us=() rin_us=() after_us=() phases=
for i in $(seq 1 "$N"); do
	true_us+=("$(us /bin/true)")
	# the helper's own measure: from typing the command to its status
	d=$("$FP" exec xb --json -- true | sed 's/.*"duration_ms": \([0-9]*\).*/\1/')
	inner_us+=("$((d * 1000))")
	snap_us+=("$(us "$FP" snap xb "s$i")")
	t0=$(now_us)
	"$FP" restore xb "s$i" --json >"$FORKPOINT_HOME/r.json"
	rest_us+=("$(($(now_us) - t0))")
	# the helper's own measure of the restore, and where it went
	rin_us+=("$(sed -n 's/.*"total_ms": \([0-9.]*\).*/\1/p' "$FORKPOINT_HOME/r.json" | awk '{printf "%d", $1 * 1000}')")
	phases=$(sed -n 's/.*"phases_ms": "\([^"]*\)".*/\1/p' "$FORKPOINT_HOME/r.json")
	after_us+=("$(us "$FP" exec xb -- true)")
	"$FP" rm xb "s$i" >/dev/null
done
read -r e50 e90 <<<"$(printf '%s\n' "${exec_us[@]}" | med)"
read -r t50 t90 <<<"$(printf '%s\n' "${true_us[@]}" | med)"
read -r s50 s90 <<<"$(printf '%s\n' "${snap_us[@]}" | med)"
read -r r50 r90 <<<"$(printf '%s\n' "${rest_us[@]}" | med)"
read -r ri50 ri90 <<<"$(printf '%s\n' "${rin_us[@]}" | med)"
read -r a50 a90 <<<"$(printf '%s\n' "${after_us[@]}" | med)"
read -r i50 i90 <<<"$(printf '%s\n' "${inner_us[@]}" | med)"
sr=$(paste -d+ <(printf '%s\n' "${snap_us[@]}") <(printf '%s\n' "${rest_us[@]}") | bc | med)
read -r sr50 sr90 <<<"$sr"
# Through the library: "step median p90" lines (sessions of their own).
"$FP" cleanup --force xb >/dev/null
api_c=$("$(dirname "$FP")/../bench/session_latency" "$N" 2>&1) || api_c="failed: $api_c"
api_py=$(python3 "$ROOT/bench/session_latency.py" "$N" 2>&1) || api_py="failed: $api_py"
api() { awk -v k="$2" '$1 == k {print $2 " | " $3}' <<<"$1"; }
out=$ROOT/bench/results/exec-latency-$(date -u +%Y%m%d-%H%M%S).md
{
	echo "# Shell session latencies ($(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD), $N rounds, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg))"
	echo
	echo "| step | forkpoint median ms | p90 ms | checkpoint-lite (published) |"
	echo "|---|---|---|---|"
	echo "| exec \`true\` (round trip, whole command) | $e50 | $e90 | - |"
	echo "| CPU per exec: the command / the helper / the shell (ms, load-independent) | $cli_cpu / $(cpu $((h1 - h0))) / $(cpu $((s1 - s0))) | - | - |"
	echo "| of which in the helper and the shell (--json duration_ms, 1 ms steps) | $i50 | $i90 | - |"
	echo "| for scale: \`/bin/true\` started the same way | $t50 | $t90 | - |"
	echo "| snap of an idle shell session | $s50 | $s90 | ~56 (snapshot of a bash shell); Waypoint fork ~137 |"
	echo "| restore of it (incl. saving the state it replaces) | $r50 | $r90 | - |"
	echo "| of which in the helper (its total_ms; last round's phases: $phases) | $ri50 | $ri90 | - |"
	echo "| snap + restore | $sr50 | $sr90 | Waypoint fork ~137 |"
	echo "| exec \`true\` right after the restore | $a50 | $a90 | - |"
	echo
	echo "Through the library, one long-lived client (no process start per call; same rounds):"
	echo
	echo "| step | C API median ms | p90 ms | Python median ms | p90 ms | aim |"
	echo "|---|---|---|---|---|---|"
	echo "| exec \`true\` | $(api "$api_c" exec_true) | $(api "$api_py" exec_true) | < 5 |"
	echo "| snap of an idle shell session | $(api "$api_c" snap) | $(api "$api_py" snap) | - |"
	echo "| restore of it | $(api "$api_c" restore) | $(api "$api_py" restore) | - |"
	echo "| snap + restore | $(api "$api_c" snap_restore) | $(api "$api_py" snap_restore) | < 20 |"
	echo "| exec \`true\` right after the restore | $(api "$api_c" exec_after_restore) | $(api "$api_py" exec_after_restore) | - |"
	[[ $api_c == failed* ]] && echo && echo "C bench: $api_c"
	[[ $api_py == failed* ]] && echo && echo "Python bench: $api_py"
	echo
	echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
