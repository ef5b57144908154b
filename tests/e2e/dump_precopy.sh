# --pages precopy: pages copied while the process runs under write tracking,
# then only the written ones during the stop. The target (ct_churn) rewrites
# memory, drops pages (MADV_DONTNEED), unmaps, maps and moves mappings
# (mremap) without pause; snapshots taken meanwhile must restore to a state
# its replay accepts, natively and with plain CRIU, and the target must go on
# unharmed.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
need_criu
N=${PRECOPY_DUMPS:-12}
start_ct c "$T/ct_churn" --mib=96
ct_verify c 1
v=1 written=0
for ((i = 1; i <= N; i++)); do
	# zstd and none alternate: both page stores take the pre-copied pieces
	comp=none; ((i % 2)) && comp=zstd
	"$FP" dump -R -t "$PID" -D "$WORK/d$i" --pages precopy --compress $comp >/dev/null ||
		fail "dump $i failed: $(tail -n 5 "$WORK/d$i.failed.log" 2>/dev/null)"
	grep -q 'pages by precopy' "$WORK/d$i/dump.log" || fail "dump $i did not pre-copy: $(grep -E 'pre-copy|resumed' "$WORK/d$i/dump.log")"
	n=$(sed -n 's/.*: \([0-9]*\) pages read while stopped.*/\1/p' "$WORK/d$i/dump.log")
	((n > 0)) && written=$((written + 1))
	"$FP" decompress --verify "$WORK/d$i" >/dev/null || fail "dump $i does not verify"
	ct_verify c $((++v))
done
# The churn runs during every dump: pages written after their pre-copy must
# have been read again during the stop (else this test proves nothing).
((written > 0)) || fail "no dump saw a page written after its pre-copy"
echo "$N pre-copy dumps, $written with pages written during the pre-copy"

# Each kept snapshot restores into a process whose replay matches. Snapshot
# i was taken after verification i, so its process answers i+1 next (the
# status file starts afresh for each; the process appends to it).
kill -9 "$PID"; wait_gone "$PID"
for i in 1 2 $N; do
	echo "ready $PID" >"$WORK/c.st"
	"$FP" restore -D "$WORK/d$i" -d >"$WORK/r$i.out" || fail "native restore of d$i failed: $(cat "$WORK/r$i.out")"
	alive "$PID" || fail "restored d$i is not running"
	ct_verify c $((i + 1))
	kill -9 "$PID"; wait_gone "$PID"
done
# Plain CRIU restores a pre-copy snapshot too (d2: uncompressed).
echo "ready $PID" >"$WORK/c.st"
criu_restore "$WORK/d2"
ct_verify c 3
kill -9 "$PID"; wait_gone "$PID"

# The mappings dump_forkcases makes hard for a fork copy (MADV_WIPEONFORK,
# MADV_DONTFORK, mlock) pre-copy like any other: restored, they verify.
start_ct fc "$T/dump_forkcases"
ct_verify fc 1
"$FP" dump -R -t "$PID" -D "$WORK/fc" --pages precopy --compress none >/dev/null || fail "pre-copy of dump_forkcases"
grep -q 'pages by precopy' "$WORK/fc/dump.log" || fail "dump_forkcases was not pre-copied"
ct_verify fc 2
kill -9 "$PID"; wait_gone "$PID"
echo "ready $PID" >"$WORK/fc.st"
"$FP" restore -D "$WORK/fc" -d >/dev/null || fail "restore of the dump_forkcases pre-copy"
ct_verify fc 2
kill -9 "$PID"; wait_gone "$PID"

# A process that cannot take one more fd (its RLIMIT_NOFILE is reached) has
# no room for the userfaultfd: it is dumped through a fork copy instead, and
# the log says why.
start_ct nu "$T/ct_heap" --mib=80 --no-spare-fds
"$FP" dump -R -t "$PID" -D "$WORK/nu" --compress none >/dev/null || fail "dump without userfaultfd: $(tail -n 3 "$WORK/nu.failed.log" 2>/dev/null)"
grep -q 'no pre-copy (.*userfaultfd() in .* failed: Too many open files' "$WORK/nu/dump.log" ||
	fail "the fallback is not explained: $(grep -E 'pre-copy|resumed' "$WORK/nu/dump.log")"
grep -q 'pages by fork' "$WORK/nu/dump.log" || fail "not through a fork copy: $(grep resumed "$WORK/nu/dump.log")"
ct_verify nu 1
kill -9 "$PID"; wait_gone "$PID"

# A session's snap takes the same way once the program is big enough (64
# MiB by default), and restore SESSION brings the churn back to it.
sst=$WORK/s.st
"$FP" run --detach --name pc -- "$T/ct_churn" "$sst" --mib=96 >/dev/null || fail "run"
track_pid "$(session_field pc helper_pid)"
wait_for 20 grep -q '^ready' "$sst" || fail "session target not ready: $(cat "$sst")"
spid=$(session_field pc target_pid)
track_pid "$spid"
"$FP" snap pc s1 >/dev/null || fail "snap of the session"
grep -q 'pages by precopy' "$FORKPOINT_HOME/sessions/pc/snapshots/s1/dump.log" ||
	fail "the session's snapshot was not pre-copied: $(grep -E 'pre-copy|resumed' "$FORKPOINT_HOME/sessions/pc/snapshots/s1/dump.log")"
kill -USR2 "$spid"
wait_for 30 grep -q '^verify 1 ' "$sst" || fail "session target gave no verification 1"
grep -q '^verify 1 ok' "$sst" || fail "session target: $(grep '^verify 1 ' "$sst")"
"$FP" restore pc s1 >/dev/null || fail "restore of the session"
# back to before verification 1: it answers 1 again
kill -USR2 "$spid"
wait_for 30 bash -c "(( \$(grep -c '^verify 1 ' '$sst') == 2 ))" || fail "restored session gave no verification"
[[ $(grep '^verify 1 ' "$sst" | tail -n 1) == "verify 1 ok"* ]] || fail "restored session: $(grep '^verify 1 ' "$sst" | tail -n 1)"
"$FP" stop pc
echo ok
