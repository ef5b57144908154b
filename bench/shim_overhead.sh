#!/usr/bin/env bash
# Overhead of the LD_PRELOAD shim on a syscall-heavy loop (open/close,
# dup/close, mmap/munmap, pipe, socket, pthread_create/join), with and without
# the shim: medians of repeated runs and the ratio; with --before, an older
# shim in the same interleaved runs (the before/after table of issue 16).
# Then, if strace is installed, the system calls per iteration with and
# without the shim (the shim should add none on these paths).
# Measures only; never fails on a number.
#   bench/shim_overhead.sh [--before GIT-REV|SO-PATH] [RUNS] [ITERATIONS]
#   bench/shim_overhead.sh --instr [--before GIT-REV|SO-PATH] [N]
# --instr: instead of times, the instructions the shim adds per pair,
# counted by callgrind (exact and repeatable, unlike times on a shared
# machine): shim_overhead's one() per iteration without and with the shim
# (and the older one), each (count of 2N iterations - count of N) / N, so
# one-time costs (lazy binding, a table page's first use) cancel out.
set -eu
INSTR=
if [[ ${1:-} == --instr ]]; then
	INSTR=1
	shift
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FP_BUILD:-$ROOT/build}
BIN=$BUILD/bench/shim_overhead
SHIM=$BUILD/lib/libforkpoint-preload.so
BEFORE=
if [[ ${1:-} == --before ]]; then
	BEFORE=$2
	shift 2
fi
for f in "$BIN" "$SHIM"; do
	[[ -e $f ]] || { echo "missing $f: run make first" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/fp-shim-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# An older shim from a git revision, built with the flags of
# preload/Makefile.inc (the shim needs nothing outside preload/).
if [[ -n $BEFORE && ! -f $BEFORE ]]; then
	rev=$BEFORE
	mkdir -p "$TMP/src"
	git -C "$ROOT" archive "$rev" preload | tar -x -C "$TMP/src"
	BEFORE=$TMP/before-$(git -C "$ROOT" rev-parse --short "$rev")/libforkpoint-preload.so
	mkdir -p "$(dirname "$BEFORE")"
	${CC:-cc} -std=c17 -D_GNU_SOURCE -O2 -fPIC -fvisibility=hidden -U_FORTIFY_SOURCE -pthread \
		-I"$TMP/src" -shared -Wl,-z,defs -Wl,-z,now -o "$BEFORE" "$TMP"/src/preload/*.c
	echo "before: the shim of $rev"
fi

if [[ -n $INSTR ]]; then
	command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
	N=${1:-1000}
	names=("open+close" "dup+close" "mmap+munmap(anon)" "mmap+munmap(file)" "pipe+2*close"
		"socket+close" "pthread_create+join" "mmap+munmap(hole)")
	count() { # SO N K: instructions inside one() for `--loop N K`
		env ${1:+LD_PRELOAD=$1} valgrind --tool=callgrind --callgrind-out-file="$TMP/cg" \
			--toggle-collect=one "$BIN" --loop "$2" "$3" >/dev/null 2>"$TMP/err" ||
			{ cat "$TMP/err" >&2; exit 1; }
		awk '/^summary:|^totals:/ { print $2; exit }' "$TMP/cg"
	}
	iters() { (($2 == 6)) && echo $(($1 / 10 + 1)) || echo "$1"; }
	per() { # SO K: instructions per iteration
		local a b
		a=$(count "$1" "$N" "$2")
		b=$(count "$1" $((2 * N)) "$2")
		echo $(((b - a) / ($(iters $((2 * N)) "$2") - $(iters "$N" "$2"))))
	}
	echo "instructions per iteration (callgrind, (2N - N) / N, N=$N)"
	printf '%-22s %8s' pair plain
	[[ -n $BEFORE ]] && printf ' %8s %8s' before +before
	printf ' %8s %8s\n' after +after
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
	exit 0
fi

echo "kernel $(uname -r), $(nproc) CPUs, $(ldd --version | head -n 1), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --shim "$SHIM" ${BEFORE:+--before "$BEFORE"} --runs "${1:-11}" --iters "${2:-20000}"

# The shim's own cost per pair, in one process: libc's call minus the raw
# system call, with the shim preloaded minus without it (see --paired).
# Twice: single-threaded, and with a second thread alive (--threaded), where
# the list locks take their lock word.
paired() { env ${1:+LD_PRELOAD=$1} "$BIN" --paired "$2" $3; }
for threads in "" --threaded; do
echo
echo "the shim's own ns per pair: (libc - raw syscall) with the shim minus without it, medians of ${2:-20000} paired iterations${threads:+, with a second thread alive}"
paired "" "${2:-20000}" "$threads" >"$TMP/p.plain"
paired "$SHIM" "${2:-20000}" "$threads" >"$TMP/p.after"
[[ -n $BEFORE ]] && paired "$BEFORE" "${2:-20000}" "$threads" >"$TMP/p.before"
python3 - "$TMP" ${BEFORE:+before} <<'PY'
import sys
tmp, vs = sys.argv[1], sys.argv[2:] + ["after"]
names = {0: "open+close", 1: "dup+close", 2: "mmap+munmap(anon)", 4: "pipe+2*close", 5: "socket+close"}
def load(v):
    return {int(a): (float(b), float(c)) for a, b, c in (l.split() for l in open(f"{tmp}/p.{v}"))}
plain = load("plain")
print("%-20s %12s" % ("pair", "plain") + "".join(" %12s %10s" % (v, "+" + v) for v in vs))
for k, n in names.items():
    row = "%-20s %12.1f" % (n, plain[k][0])
    for v in vs:
        d = load(v)[k][0]
        row += " %12.1f %10.1f" % (d, d - plain[k][0])
    print(row)
PY
done

if command -v strace >/dev/null; then
	n=1000
	count() { # prints the total number of system calls of one --loop run
		env ${1:+LD_PRELOAD=$1} strace -f -c -o "$TMP/st" "$BIN" --loop $n >/dev/null
		awk '$NF == "total" { print $(NF-2) }' "$TMP/st"
	}
	plain=$(count "")
	echo
	echo "system calls of a whole --loop $n run (every pair $n times, the thread pair $((n / 10 + 1)))"
	printf '%-8s %8s %10s\n' variant calls "+calls"
	printf '%-8s %8s %10s\n' plain "$plain" -
	for v in ${BEFORE:+before} after; do
		so=$SHIM
		[[ $v == before ]] && so=$BEFORE
		c=$(count "$so")
		printf '%-8s %8s %10s\n' "$v" "$c" "+$((c - plain))"
	done
fi
