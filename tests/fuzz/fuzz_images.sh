# Runs the libFuzzer target of the image decoders and the page store
# (build-fuzz/fuzz_images, `make fuzz`) for FUZZ_SECONDS (default 60), from
# seeds packed from real dumps made here: a static program dumped with the
# zstd page store and with plain pages, and a process tree. A crash, leak,
# sanitizer report or timeout fails the test and prints the crashing
# input's path (kept in build-fuzz/artifacts/; replay it with
# `build-fuzz/fuzz_images PATH`).
source "$(dirname "$0")/../lib.sh"
FZ=${FP_FUZZ_BIN:-$ROOT/build-fuzz/fuzz_images} # another target: a test of this script
[[ -x $FZ ]] || { echo "build-fuzz/fuzz_images is not built (make fuzz)"; exit 77; }
[[ $(id -u) == 0 ]] || { echo "needs root (dumps the seed processes)"; exit 77; }
secs=${FUZZ_SECONDS:-60}

imgs=()
dump_of() { # NAME PID ARGS...: dumps PID into $WORK/NAME
	local name=$1 pid=$2; shift 2
	"$FP" dump -t "$pid" -D "$WORK/$name" "$@" -o "$WORK/$name.log" >/dev/null ||
		fail "seed dump $name: $(tail -n 3 "$WORK/$name.log")"
	imgs+=("$WORK/$name")
}
# A static program: few pages, so the plain page file stays small.
for c in zstd none; do
	(exec setsid "$T/static_sleeper" pause </dev/null >"$WORK/ss-$c.out" 2>&1 &)
	wait_for 20 grep -q '^ready' "$WORK/ss-$c.out" || fail "static_sleeper not ready"
	p=$(awk '/^ready/{print $2; exit}' "$WORK/ss-$c.out"); track_pid "$p"
	dump_of "static-$c" "$p" --compress "$c"
done
# A tree (pipes, groups, several processes) with the zstd page store.
mkdir "$WORK/treedir"
(exec setsid "$T/ct_tree" "$WORK/tree.st" --dir="$WORK/treedir" --quiet-stdio </dev/null >/dev/null 2>&1 &)
wait_for 20 grep -q '^ready' "$WORK/tree.st" || fail "ct_tree not ready"
p=$(awk '/^ready/{print $2; exit}' "$WORK/tree.st"); track_pid "$p"
dump_of tree "$p" --compress zstd
seeds=$WORK/seeds corpus=$WORK/corpus art=$ROOT/build-fuzz/artifacts
mkdir -p "$corpus" "$art"
python3 "$ROOT/tests/fuzz/mkseeds.py" "$seeds" "${imgs[@]}" || fail "packing the seeds"
echo "seeds: $(ls "$seeds" | wc -l) inputs, $(du -sk "$seeds" | cut -f1) KiB; fuzzing for $secs s"
before=$(ls "$art" | wc -l)
tmp=$(mktemp -d "$( [[ -w /dev/shm ]] && echo /dev/shm || echo /tmp )/fp-fuzz-run.XXXXXX")
FP_FUZZ_TMP=$tmp "$FZ" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=400000 \
	-artifact_prefix="$art/" -print_final_stats=1 "$corpus" "$seeds" >"$WORK/fuzz.out" 2>&1
rc=$?
rm -rf "$tmp"; cp -r "$seeds" "$ROOT/build-fuzz/seeds" 2>/dev/null
tail -n 25 "$WORK/fuzz.out"
if [[ $rc != 0 ]]; then
	new=$(ls -t "$art" | head -n $(( $(ls "$art" | wc -l) - before )))
	for f in $new; do echo "crashing input: $art/$f"; done
	fail "the fuzzer found a failure (exit $rc); replay with: $FZ <crashing input>"
fi
grep -q 'Done [0-9]* runs' "$WORK/fuzz.out" || fail "the fuzzer did not finish its run"
echo ok
