#!/usr/bin/env bash
# Overhead of the LD_PRELOAD shim on a syscall-heavy loop (open/close,
# dup/close, mmap/munmap, pipe, socket), with and without the shim: median of
# repeated runs and the ratio. Measures only; never fails on a number.
#   bench/shim_overhead.sh [RUNS] [ITERATIONS]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FP_BUILD:-$ROOT/build}
BIN=$BUILD/bench/shim_overhead
SHIM=$BUILD/lib/libforkpoint-preload.so
for f in "$BIN" "$SHIM"; do
	[[ -e $f ]] || { echo "missing $f: run make first" >&2; exit 1; }
done
echo "kernel $(uname -r), $(nproc) CPUs, $(ldd --version | head -n 1)"
exec "$BIN" --shim "$SHIM" --runs "${1:-11}" --iters "${2:-20000}"
