#!/usr/bin/env bash
# forkpoint's own memory while it dumps a big process that keeps running
# (`dump -R --pages precopy`, the way a session's first snapshot is taken):
# the dumper's peak anonymous memory (RssAnon) and file pages (RssFile),
# sampled every 20 ms from /proc, for a bench_dirty target of MIB MiB; with
# the wall time and pause of each of RUNS dumps. Measures only.
#   bench/dump_memory.sh [MIB] [RUNS]        (default 1024 3; needs root)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FP_BUILD:-$ROOT/build}
FP=$BUILD/bin/forkpoint
TGT=$BUILD/bench/bench_dirty
MIB=${1:-1024}
RUNS=${2:-3}
for f in "$FP" "$TGT"; do
	[[ -x $f ]] || { echo "missing $f: run make first" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/fp-dump-mem.XXXXXX)
tp=
trap '[[ -n $tp ]] && kill -9 "$tp" 2>/dev/null; rm -rf "$TMP"' EXIT
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); target ${MIB} MiB"
printf '%-4s %10s %10s %14s %14s\n' run "wall s" "pause ms" "peak anon MiB" "peak file MiB"
for r in $(seq "$RUNS"); do
	"$TGT" "$TMP/st" --mib="$MIB" --pct=1 </dev/null >/dev/null 2>&1 &
	tp=$!
	for _ in $(seq 600); do grep -qs '^ready' "$TMP/st" && break; sleep 0.1; done
	t0=$(date +%s%N)
	"$FP" dump -R -t "$tp" -D "$TMP/d$r" --pages precopy >"$TMP/out" 2>&1 &
	dp=$!
	ma=0 mf=0
	while kill -0 "$dp" 2>/dev/null; do
		read -r a f < <(awk '/^RssAnon/{a=$2} /^RssFile/{f=$2} END{print a+0, f+0}' "/proc/$dp/status" 2>/dev/null || echo "0 0")
		((a > ma)) && ma=$a
		((f > mf)) && mf=$f
		sleep 0.02
	done
	wait "$dp" || { echo "dump failed: $(cat "$TMP/out")" >&2; exit 1; }
	t1=$(date +%s%N)
	pause=$(sed -n 's/.*pause \([0-9.]*\) ms.*/\1/p' "$TMP/out")
	printf '%-4s %10.2f %10s %14d %14d\n' "$r" "$(echo "($t1 - $t0) / 1000000000" | bc -l)" "$pause" $((ma / 1024)) $((mf / 1024))
	kill -9 "$tp"
	wait "$tp" 2>/dev/null || true
	tp=
	rm -rf "$TMP/d$r" "$TMP/st"
done
