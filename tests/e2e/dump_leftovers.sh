# A dump killed with -9 leaves its temporary directory; the next dump into
# the same directory removes it and says so, and leaves alone the temporary
# directory of a dump that is still running (its owner is alive).
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (ptrace of the target)"; exit 77; }
start_ct() {
	local st=$WORK/$1.st
	(cd "$WORK" && exec setsid "$2" "$st" "${@:3}" --quiet-stdio </dev/null >/dev/null 2>&1 &)
	wait_for 20 grep -q '^ready ' "$st" || fail "$1 did not get ready"
	PID=$(awk '/^ready /{print $2; exit}' "$st"); track_pid "$PID"
}
start_ct t "$T/ct_heap" --mib=128
out=$WORK/out; mkdir "$out"
left=""
for try in 1 2 3 4 5; do
	"$FP" dump -R -t "$PID" -D "$out/d$try" --compress none >/dev/null 2>&1 & dp=$!
	wait_for 20 bash -c "compgen -G '$out/.d$try.forkpoint-tmp-*' >/dev/null || ! kill -0 $dp 2>/dev/null"
	kill -STOP "$dp" 2>/dev/null; kill -9 "$dp" 2>/dev/null; wait "$dp" 2>/dev/null
	left=$(compgen -G "$out/.d$try.forkpoint-tmp-*" || true)
	[[ -n $left ]] && break
done
[[ -n $left ]] || fail "no dump was caught before its end in 5 tries"
wait_for 10 bash -c "[[ \$(awk '/TracerPid/{print \$2}' /proc/$PID/status) == 0 ]]" || fail "target still traced"

# A running dump's directory: its owner (this shell's sleep) is alive.
sleep 1000 & sp=$!; track_pid "$sp"
start=$(awk '{print $22}' "/proc/$sp/stat")
live=$out/.live.forkpoint-tmp-$sp.$start-abcdef; mkdir -m 700 "$live"
# One of a dead owner (a pid that is not running with that start time).
dead=$out/.gone.forkpoint-tmp-$sp.1-abcdef; mkdir -m 700 "$dead"

"$FP" dump -R -t "$PID" -D "$out/next" --compress none >/dev/null 2>"$WORK/err" || fail "dump after the kill: $(cat "$WORK/err")"
grep -q "removed 2 left-over temporary directories" "$WORK/err" || fail "no line about the left-overs: $(cat "$WORK/err")"
grep -qF "$(basename "$left")" "$WORK/err" || fail "the line does not name $(basename "$left"): $(cat "$WORK/err")"
[[ ! -e $left && ! -e $dead ]] || fail "left-overs still there: $(ls -a "$out")"
[[ -d $live ]] || fail "the directory of a running dump was removed"
grep -q "removed 2 left-over" "$out/next/dump.log" || fail "the dump log does not say so"
"$FP" decompress --verify "$out/next" || fail "the new snapshot does not verify"
v=$(ct_verify "$WORK/t.st" "$PID") || fail "the target does not verify after the killed dump: $v"
echo ok
