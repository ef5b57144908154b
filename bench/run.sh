#!/usr/bin/env bash
# `make bench`: forkpoint against plain CRIU 4.x on the same workloads, side
# by side (bench/driver.py does the work; see its header for the method).
#   BENCH_QUICK=1        3 rounds per cell, no 1 GiB workload (a few minutes)
#   BENCH_RUNS=N         rounds per cell (default 5)
#   BENCH_WORKLOADS=a,b  only these (heap10M heap100M heap1G threads16 bash
#                        python200M redis100k redis100k-unix)
#   BENCH_EXPLORE=0      skip the exploration workload (bench/incremental.py:
#                        incremental snap + rollback per step at 100 MiB and
#                        1 GiB with 0.1, 1 and 10% written, and a python3
#                        process of 200 MiB, through the Python binding with
#                        50 ms between steps and --early-reply; then
#                        bench/branch.py), written
#                        to bench/results/explore-<time>.md
# Results in bench/results/: bench-<time>.{md,csv,json} and
# bench-<time>-{dump,pause,restore}.png, each also copied to latest*.
#
# The driver kills what it starts; as a safety net this script also kills any
# process still running inside the run's private work directory (every
# target and restored process has its cwd there) when it exits.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FP_BUILD:-$ROOT/build}
PY=/usr/bin/python3

die() { echo "bench: $*" >&2; exit 1; }
[[ $EUID == 0 ]] || die "must run as root (CRIU and ptrace need it); try \`sudo make bench\`"
[[ -x $PY ]] || die "$PY not found; run \`make setup\`"
BINS=("$BUILD/bin/forkpoint" "$BUILD/bench/bench_runwait" "$BUILD/bench/bench_threads"
	"$BUILD/tests/targets/ct_heap" "$BUILD/bench/warm_memory")
for f in "${BINS[@]}"; do
	[[ -x $f ]] || die "missing $f; run \`make\` first"
done
for c in crit redis-server redis-cli gnuplot; do
	command -v "$c" >/dev/null || die "$c not found; run \`make setup\`"
done

WORK=$(mktemp -d "${BENCH_WORKDIR:-/var/tmp}/forkpoint-bench.XXXXXX")
cleanup() {
	local p cwd left=()
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		[[ $cwd == "$WORK" || $cwd == "$WORK"/* ]] && left+=("${p#/proc/}")
	done
	if ((${#left[@]})); then
		echo "bench: killing leftover processes ${left[*]}" >&2
		kill -9 "${left[@]}" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# What is measured is a snapshot of the build: other work may rebuild the
# tree during a long run. (The shim goes along: forkpoint finds it by its own
# location, ../lib.)
mkdir "$WORK/bin" "$WORK/lib"
cp "${BINS[@]}" "$WORK/bin/"
[[ ! -e $BUILD/lib/libforkpoint-preload.so ]] || cp "$BUILD/lib/libforkpoint-preload.so" "$WORK/lib/"

# The machine's free memory touched once, before anything is measured
# (bench/warm_memory.c: on a fresh VM each new page costs a host fault, and
# the first tool to write page cache would pay for both).
"$WORK/bin/warm_memory"

# The driver runs in the background so that a signal to this script (Ctrl-C,
# kill, a closed terminal) is passed on at once: it then kills what it
# started and exits; cleanup above catches anything left.
cd "$ROOT"
PYTHONDONTWRITEBYTECODE=1 BENCH_WORKDIR=$WORK BENCH_BIN=$WORK/bin "$PY" "$ROOT/bench/driver.py" &
DRIVER=$!
trap 'kill -TERM $DRIVER 2>/dev/null; wait $DRIVER; exit 130' INT TERM HUP
wait $DRIVER
rc=$?

# The exploration workload: snapshots, rollbacks and branches of one
# session, per step, beside CRIU's dump -R + restore of the same target
# (branches, cold and hot, need root: namespaces).
if [[ ${BENCH_EXPLORE:-1} != 0 ]]; then
	OUT=$ROOT/bench/results/explore-$(date -u +%Y%m%d-%H%M%S).md
	# as an agent drives a session: through the Python binding, 50 ms
	# between a step and its next request, snapshots replying before
	# their images are written (README, "Incremental snapshots")
	AGENT=(--client api --think-ms 50 --early-reply)
	if [[ -n ${BENCH_QUICK:-} ]]; then
		EXPLORE=(--sizes 100 --pct 1 --python 200 --steps 5 --rollbacks 2 --criu-rounds 1 "${AGENT[@]}")
		BRANCH=(--sizes 100 --runs 3)
	else
		EXPLORE=(--sizes 100,1024 --pct 0.1,1,10 --python 200 "${AGENT[@]}")
		BRANCH=(--sizes 100,1024 --runs 3)
	fi
	"$PY" "$ROOT/bench/incremental.py" "${EXPLORE[@]}" --no-warm --out "$OUT" || rc=$?
	if [[ $(id -u) == 0 ]]; then
		"$PY" "$ROOT/bench/branch.py" "${BRANCH[@]}" --no-warm --out "$OUT.branch" || rc=$?
		cat "$OUT.branch" >>"$OUT" && rm -f "$OUT.branch"
	fi
	cp "$OUT" "$ROOT/bench/results/explore-latest.md"
fi
exit $rc
