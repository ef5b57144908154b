# A process tree whose fds reach up to its soft file limit: ct_tree (eight
# pipes shared by four processes) started under `ulimit -Sn 64` with an fd
# at 60, dumped, and restored natively under the same soft limit. Placing
# the pipes needs fds above 60 for a moment, more than the limit leaves:
# the restore gave "moving a pipe end failed in the restored process: Too
# many open files". Now the stub's soft limit goes up for its files and
# the image's (64) is set again after: every process checks its state, fd
# 60 is there, and the limit is what it was. The same with CRIU, which
# needs room above the highest fd for its own service fds.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (clone3 set_tid)"; exit 77; }
(($(ulimit -Hn) >= 128)) || { echo "needs a hard file limit of 128 or more"; exit 77; }

st=$WORK/lim.status
(
	ulimit -Sn 64
	exec 60>"$WORK/high"
	exec "$T/ct_tree" "$st" --dir="$WORK" --setsid --same-pid --quiet-stdio </dev/null >/dev/null 2>&1
) &
tree_ready "$st"
v=$(ct_verify "$st" "$pid") || fail "verify 1: $v"
[[ -e /proc/$pid/fd/60 ]] || fail "ct_tree has no fd 60"
soft() { awk '/^Max open files/{print $4}' "/proc/$1/limits"; }
[[ $(soft "$pid") == 64 ]] || fail "soft file limit of ct_tree: $(soft "$pid")"

"$FP" dump -t "$pid" -D "$WORK/d" >/dev/null || fail "dump of the tree"
wait_for 15 tree_gone || fail "the tree is still there after the dump"

# restore_under_64 ENGINE: restored under the soft limit of 64, every
# process checked, its fd 60 there and its limit the image's again
restore_under_64() {
	local out v p
	out=$(ulimit -Sn 64 && "$FP" restore -D "$WORK/d" --engine "$1" -d -o "$WORK/$1.log" 2>&1) ||
		fail "$1 restore under a soft file limit of 64: $out"
	v=$(ct_verify "$st" "$pid") || fail "verify after the $1 restore: $v"
	[[ $v == "verify 2 ok"* ]] || fail "state after the $1 restore: $v"
	for p in "$pid" $kids; do
		[[ -e /proc/$p/fd/60 ]] || fail "process $p has no fd 60 after the $1 restore"
		[[ $(soft "$p") == 64 ]] || fail "soft file limit of $p after the $1 restore: $(soft "$p") (not the image's 64)"
	done
}
restore_under_64 native
grep -q "soft file limit 64 -> " "$WORK/native.log" || fail "the log does not say the limit was raised for the files"
kill -9 "$pid" $kids
wait_for 15 tree_gone || fail "the restored tree did not die"

# CRIU puts its service fds above the image's highest fd, within its own
# soft limit: forkpoint starts it with the soft limit at the hard one.
if find_criu; then
	restore_under_64 criu
	kill -9 "$pid" $kids
	wait_for 15 tree_gone || fail "the tree restored by CRIU did not die"
else
	echo "no working CRIU: its part skipped"
fi
echo ok
