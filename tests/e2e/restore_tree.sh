# Process trees: ct_tree (a parent, a child in its group, a child leading a
# group of its own with a grandchild, all sharing pipes and one file offset)
# is dumped and restored by the native engine with every pid, parent, group
# and session as before, and shared descriptions shared again; the same
# images restore with CRIU; a session of a tree restores natively; a restore
# that fails half way leaves none of the tree behind.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (clone3 set_tid)"; exit 77; }

st=$WORK/tree.status
"$T/ct_tree" "$st" --dir="$WORK" --setsid --same-pid --quiet-stdio </dev/null >/dev/null 2>&1 &
tree_ready "$st"
v=$(ct_verify "$st" "$pid") || fail "verify 1: $v"
shape() { for p in "$pid" $kids; do ps -o pid=,ppid=,pgid=,sid= -p "$p"; done | awk '{$1=$1; print}'; }
before=$(shape)
[[ $(wc -l <<<"$before") == 4 ]] || fail "expected 4 processes: $before"

"$FP" dump -t "$pid" -D "$WORK/d" >/dev/null || fail "dump of the tree"
wait_for 15 tree_gone || fail "the tree is still there after the dump"

# Half way failures leave nothing behind.
for step in memory files registers; do
	out=$(FORKPOINT_RESTORE_FAIL_AT=$step "$FP" restore -D "$WORK/d" --engine native -d 2>&1) &&
		fail "a restore failing at $step succeeded"
	tree_gone || fail "a restore failing at $step left processes: $(shape)"
done

out=$("$FP" restore -D "$WORK/d" --engine native -d -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
[[ $out == "$pid" ]] || fail "native restore printed '$out'"
grep -q "natively (4 processes)" "$WORK/native.log" || fail "not one native restore of 4 processes"
v=$(ct_verify "$st" "$pid") || fail "verify after the native restore: $v"
[[ $v == "verify 2 ok"* ]] || fail "state after the native restore: $v"
after=$(shape)
# The root's parent is now whoever adopted it; everything else is as before.
[[ $(awk '{print $1, $3, $4}' <<<"$after") == "$(awk '{print $1, $3, $4}' <<<"$before")" ]] ||
	fail "pids, groups or sessions differ: before '$before', after '$after'"
[[ $(tail -n +2 <<<"$after") == "$(tail -n +2 <<<"$before")" ]] || fail "children's parents differ: '$before' / '$after'"
kill -9 "$pid" $kids
wait_for 15 tree_gone || fail "the restored tree did not die"

if find_criu; then
	out=$("$FP" restore -D "$WORK/d" --engine criu -d -o "$WORK/criu.log" 2>&1) || fail "criu restore: $out"
	v=$(ct_verify "$st" "$pid") || fail "verify after the criu restore: $v"
	[[ $v == "verify 2 ok"* ]] || fail "state after the criu restore: $v"
	kill -9 "$pid" $kids
	wait_for 15 tree_gone || fail "the criu-restored tree did not die"
else
	skip_part "restore --engine criu of the tree"
fi

# A session whose program is a tree.
sst=$WORK/session.status
"$FP" run --detach --name tree -- "$T/ct_tree" "$sst" --dir="$WORK" --same-pid >/dev/null || fail "run"
track_pid "$(session_field tree helper_pid)"
wait_for 20 grep -qs '^ready' "$sst" || fail "session tree not ready"
spid=$(session_field tree target_pid)
"$FP" snap tree s1 >/dev/null || fail "snap of a tree"
v=$(ct_verify "$sst" "$spid") || fail "session verify 1: $v"
out=$("$FP" restore tree s1 --json) || fail "session restore of a tree: $out"
# The same processes as s1's: rolled back in place (session/rollback_*.c),
# else restored by the native engine; never by CRIU.
grep -Eq '"engine": "(in-place|native)"' <<<"$out" || fail "session tree not restored natively: $out"
v=$(ct_verify "$sst" "$spid") || fail "session verify after restore: $v"
[[ $v == "verify 1 ok"* ]] || fail "session state after restore: $v"
"$FP" stop tree
echo ok
