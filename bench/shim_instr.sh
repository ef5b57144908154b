#!/usr/bin/env bash
# Instructions the shim adds per operation pair, counted by callgrind (exact
# and repeatable, unlike timings on a shared machine): the instructions of
# shim_overhead's one() per iteration, without and with the shim (and with an
# older shim given as SO-PATH). One-time costs (lazy binding, first use of a
# table page) cancel out: each figure is (count of 2N iterations - count of N)
# / N. Measures only.
#   bench/shim_instr.sh [--before SO-PATH] [N]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FP_BUILD:-$ROOT/build}
BIN=$BUILD/bench/shim_overhead
SHIM=$BUILD/lib/libforkpoint-preload.so
BEFORE=
if [[ ${1:-} == --before ]]; then
	BEFORE=$(realpath "$2")
	shift 2
fi
N=${1:-1000}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
TMP=$(mktemp -d /tmp/fp-shim-instr.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
names=("open+close" "dup+close" "mmap+munmap(anon)" "mmap+munmap(file)" "pipe+2*close"
	"socket+close" "pthread_create+join" "mmap+munmap(hole)")
# instructions collected inside one() for `--loop n k`
count() { # so n k
	env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --callgrind-out-file="$TMP/cg" \
		--toggle-collect=one "$BIN" --loop "$2" "$3" >/dev/null 2>"$TMP/err" ||
		{ cat "$TMP/err" >&2; exit 1; }
	awk '/^summary:|^totals:/ { print $2; exit }' "$TMP/cg"
}
iters() { (($2 == 6)) && echo $(($1 / 10 + 1)) || echo "$1"; }
per() { # so k -> instructions per iteration
	local a b
	a=$(count "$1" "$N" "$2")
	b=$(count "$1" $((2 * N)) "$2")
	echo $(((b - a) / ($(iters $((2 * N)) "$2") - $(iters "$N" "$2"))))
}
echo "instructions per iteration (callgrind, (2N - N) / N, N=$N)"
printf '%-22s %8s' pair plain
[[ -n $BEFORE ]] && printf ' %8s %8s' before +before
printf ' %8s %8s\n' shim +shim
for k in 0 1 2 3 4 5 6 7; do
	p=$(per "" $k)
	printf '%-22s %8d' "${names[$k]}" "$p"
	if [[ -n $BEFORE ]]; then
		b=$(per "$BEFORE" $k)
		printf ' %8d %8d' "$b" $((b - p))
	fi
	s=$(per "$SHIM" $k)
	printf ' %8d %8d\n' "$s" $((s - p))
done
