# The network lock of a dump that is never restored: a dump that kills a
# tree with TCP connections leaves its iptables rules for the restore, and
# records which snapshot they wait for. While the snapshot exists, later
# dumps leave them alone (and it restores); once it is deleted, the next
# dump lifts them and says so on stderr. CRIU's own rules (no record) and
# those of a snapshot still there are never touched.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
source "$(dirname "$0")/tcp_common.inc"
# other_dump NAME: a dump (-R) of a process without connections; its stderr in $WORK/NAME.err
other_dump() {
	"$FP" dump -R -t "$IDLE" -D "$WORK/$1" >/dev/null 2>"$WORK/$1.err" || fail "dump of ct_idle: $(cat "$WORK/$1.err")"
}
start_ct idle "$T/ct_idle"
IDLE=$PID

# kept: its snapshot stays, so later dumps keep its lock, and it restores
start_ct kept "$T/ct_tcp"
"$FP" dump --tcp-established -t "$PID" -D "$WORK/kept" >/dev/null || fail "dump: $(tail -n 3 "$WORK/kept.failed.log")"
wait_gone "$PID"
KP=$(ports "$WORK/kept")
[[ $(rules $KP) == 8 ]] || fail "the dump did not leave its lock: $(rules $KP) rules"

# lost: its snapshot is deleted without a restore
start_ct lost "$T/ct_tcp"
"$FP" dump --tcp-established -t "$PID" -D "$WORK/lost" >/dev/null || fail "dump: $(tail -n 3 "$WORK/lost.failed.log")"
wait_gone "$PID"
LP=$(ports "$WORK/lost")
[[ $(rules $LP) == 8 ]] || fail "the dump did not leave its lock: $(rules $LP) rules"

other_dump o1
[[ $(rules $LP) == 8 && $(rules $KP) == 8 ]] || fail "a dump lifted a lock whose snapshot still exists"
! grep -q 'network lock' "$WORK/o1.err" || fail "a dump reported lifting a lock it should keep: $(cat "$WORK/o1.err")"

rm -rf "$WORK/lost"
other_dump o2
[[ $(rules $LP) == 0 ]] || fail "the lock of the deleted snapshot is still there: $(rules $LP) rules"
[[ $(rules $KP) == 8 ]] || fail "the lock of the kept snapshot was lifted too"
grep -q "lifted the network lock (iptables rules) of 4 TCP connection(s) left by 1 snapshot(s) deleted without a restore: $WORK/lost\$" \
	"$WORK/o2.err" || fail "no line about the lifted lock: $(cat "$WORK/o2.err")"
other_dump o3
! grep -q 'network lock' "$WORK/o3.err" || fail "the lock was reported twice: $(cat "$WORK/o3.err")"

out=$("$FP" restore -D "$WORK/kept" -d --engine native 2>&1) || fail "native restore of the kept snapshot: $out"
[[ $(rules $KP) == 0 ]] || fail "the restore left lock rules"
ct_verify kept 1
kill -9 "$PID" "$IDLE"
echo ok
