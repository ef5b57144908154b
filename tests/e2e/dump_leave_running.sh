# --leave-running: a computation dumped 1000 times goes on unharmed and ends
# with the same result as an untouched run of it; one of the dumps restores.
# Every other dump pre-copies (--pages precopy) while the threads write, the
# others use a frozen copy; the kept one (N/2) is a pre-copy.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
need_criu
ROUNDS=${DUMP_TEST_ROUNDS:-30000}
N=${DUMP_TEST_DUMPS:-1000}
CT=$T/dump_compute
start_ct ref "$CT" --rounds=$ROUNDS --sleep-us=1000
start_ct dut "$CT" --rounds=$ROUNDS --sleep-us=1000; DUT=$PID

fails=0
for ((i = 1; i <= N; i++)); do
	mode=fork; ((i % 2)) || mode=precopy
	if ! "$FP" dump -R -t "$DUT" -D "$WORK/d" --compress none --no-fsync --pages $mode >/dev/null 2>"$WORK/err"; then
		fails=$((fails + 1)); cat "$WORK/err"
	fi
	# keep one snapshot to restore at the end; drop the others
	if ((i == N / 2)); then mv "$WORK/d" "$WORK/keep"; else rm -rf "$WORK/d"; fi
	alive "$DUT" || fail "the target died after dump $i"
done
((fails == 0)) || fail "$fails of $N dumps failed"
grep -q 'pages by precopy' "$WORK/keep/dump.log" || fail "the kept dump did not pre-copy"
grep -h pause_ms "$WORK/keep/dump.log" || true

# Both runs finish their rounds; one verification each then reports the
# result (a verification recomputes every round, so ask only once).
final() { # NAME
	wait_for 300 grep -q "^finished round=$ROUNDS" "$WORK/$1.st" || fail "$1 did not reach round $ROUNDS"
	ct_verify "$1" 1
	grep -q "^verify 1 ok.*round=$ROUNDS " "$WORK/$1.st" || fail "$1: $(grep '^verify 1 ' "$WORK/$1.st")"
}
final ref
final dut
r1=$(grep -o "round=$ROUNDS result=[0-9a-f]*" "$WORK/ref.st" | head -n 1)
r2=$(grep -o "round=$ROUNDS result=[0-9a-f]*" "$WORK/dut.st" | head -n 1)
[[ -n $r1 && $r1 == "$r2" ]] || fail "results differ: untouched '$r1', dumped $N times '$r2'"
echo "same result after $N dumps: $r2"

# The snapshot taken half-way restores and goes on computing correctly.
kill -9 "$DUT"; wait_gone "$DUT"
criu_restore "$WORK/keep"
# The restored process counts verifications from where it was dumped.
before=$(grep -c '^verify ' "$WORK/dut.st")
kill -USR2 "$DUT"
wait_for 60 bash -c "(( \$(grep -c '^verify ' '$WORK/dut.st') > $before ))" || fail "restored target does not answer"
tail -n 1 "$WORK/dut.st" | grep -q '^verify [0-9]* ok' || fail "restored target: $(tail -n 1 "$WORK/dut.st")"
echo ok
