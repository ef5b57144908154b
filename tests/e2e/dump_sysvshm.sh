# SysV shared memory (ct_sysvshm: a keyed segment, a private one attached
# twice, read-write and read-only, and one removed with IPC_RMID while
# attached, all shared by a parent and its child). After each restore the
# target checks every segment by its id (key, size, mode, removed or not,
# attach count), its attaches in maps and the contents, and a token must go
# both ways through each segment.
#
# Ways: dump + native restore (the segments come back with their ids, the
# removed one made again, the others reused and refilled); `dump
# --leave-running` (fork copy and pre-copy) with the original still passing
# its check, then the image restored while the original runs (its ids are
# taken: a new IPC namespace) and again once it is gone. CRIU 4.2 dumps
# SysV shared memory only with the tree's own IPC namespace ("doesn't live
# in IPC ns") and restores an attach only from such a namespace image, so
# the CRIU ways do not apply to a tree in the host's namespace; part 2
# checks that this is still so.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (map_files, clone3 set_tid, shm_next_id)"; exit 77; }
find_criu || true

segs=()
rm_segs() { # every segment a target of this test made in our namespace
	local id
	for id in "${segs[@]}"; do ipcrm -m "$id" 2>/dev/null; done
	cleanup
}
trap rm_segs EXIT

st=$WORK/sysv.st
start() {
	rm -f "$st"
	(cd "$WORK" && exec setsid "$T/ct_sysvshm" "$st" --rmid --same-pid --quiet-stdio </dev/null >/dev/null 2>&1 &)
	wait_for 20 grep -qs '^ready' "$st" || fail "ct_sysvshm not ready: $(cat "$st" 2>/dev/null)"
	pid=$(awk '/^ready/{print $2}' "$st")
	kid=$(awk '/^info child/{print $4}' "$st")
	track_pid "$pid"; track_pid "$kid"
	mapfile -t ids < <(awk '/^info segment/{print $5}' "$st")
	segs+=("${ids[@]}")
	((${#ids[@]} == 3)) || fail "expected 3 segments: $(cat "$st")"
}
gone() { [[ ! -e /proc/$pid && ! -e /proc/$kid ]]; }
stop_all() { kill -9 "$pid" "$kid" 2>/dev/null; wait_for 15 gone || fail "ct_sysvshm did not die"; }
verify() { # WHAT EXPECTED-N [PID]
	local v
	v=$(ct_verify "$st" "${3:-$pid}") || fail "$1: $v"
	[[ $v == "verify $2 ok"* ]] || fail "$1: $v"
}
nattch() { awk -v id="$1" '$2 == id {print $7}' /proc/sysvipc/shm; }

# 1. dump + native restore.
start
verify "before the dump" 1
"$FP" dump -t "$pid" -D "$WORK/d1" >/dev/null || fail "dump"
wait_for 15 gone || fail "the tree is still there after the dump"
ls "$WORK"/d1/ipcns-shm-*.img >/dev/null || fail "no ipcns-shm image"
for id in "${ids[@]}"; do
	[[ -e $WORK/d1/pagemap-shmem-$id.img ]] || fail "no pagemap-shmem-$id.img"
done
# the kept segments outlive the tree; the removed one went with it
[[ $(nattch "${ids[0]}") == 0 ]] || fail "segment ${ids[0]} is not idle after the dump"
[[ -z $(nattch "${ids[2]}") ]] || fail "the removed segment ${ids[2]} outlived the tree"
out=$("$FP" restore -D "$WORK/d1" --engine native -d -o "$WORK/native1.log" 2>&1) || fail "native restore: $out"
[[ $out == "$pid" ]] || fail "native restore printed '$out'"
grep -q "natively (2 processes)" "$WORK/native1.log" || fail "not restored natively: $(tail -n 3 "$WORK/native1.log")"
grep -q "SysV segment ${ids[2]} .* made" "$WORK/native1.log" || fail "the removed segment was not made again"
grep -q "SysV segment ${ids[0]} .* reused" "$WORK/native1.log" || fail "the kept segment was not reused"
verify "after the native restore" 2
verify "again after the native restore" 3
kill -TERM "$pid"
wait_for 15 gone || fail "ct_sysvshm did not end on SIGTERM"
[[ $(tail -n 1 "$st") == "verify 4 ok"* ]] || fail "last verification: $(tail -n 1 "$st")"
[[ -z $(nattch "${ids[0]}") ]] || fail "the target did not remove its segments"

# 2. CRIU refuses a tree whose SysV memory lives in the host's IPC namespace.
if [[ -n $CRIU ]]; then
	start
	mkdir -p "$WORK/c2"
	if criu_run dump -t "$pid" -D "$WORK/c2" -o dump.log -R; then
		echo "note: this CRIU dumps SysV shared memory of the host's IPC namespace; the test can grow CRIU ways"
	else
		grep -q "doesn't live in IPC ns" "$WORK/c2/dump.log" || fail "criu dump failed otherwise: $(grep Error "$WORK/c2/dump.log" | head -n 3)"
	fi
	verify "after CRIU's attempt" 1
	stop_all
fi

# 3. --leave-running: the original passes; the image restores beside it
# (new pid and IPC namespaces) and after it.
start
verify "before the live dumps" 1
"$FP" dump -R -t "$pid" -D "$WORK/d3" --pages fork >"$WORK/out3" || fail "fork dump: $(cat "$WORK/out3")"
verify "the original after the fork dump" 2
"$FP" dump -R -t "$pid" -D "$WORK/d4" --pages precopy >"$WORK/out4" || fail "pre-copy dump: $(cat "$WORK/out4")"
grep -q 'pages by precopy' "$WORK/out4" || fail "not a pre-copy: $(cat "$WORK/out4")"
verify "the original after the pre-copy dump" 3
out=$("$FP" restore -D "$WORK/d3" --engine native -d -o "$WORK/native3.log" 2>/dev/null) || fail "restore beside the original"
grep -q "new IPC namespace" "$WORK/native3.log" || fail "not restored into a new IPC namespace: $(grep -i sysv "$WORK/native3.log")"
copy=$out
track_pid "$copy"
[[ $(readlink "/proc/$copy/ns/ipc") != $(readlink /proc/self/ns/ipc) ]] || fail "the copy shares our IPC namespace"
verify "the copy beside the original" 2 "$copy"
verify "the original beside the copy" 4
kill -9 "$copy"
stop_all
wait_for 15 test ! -e "/proc/$copy" || fail "the copy did not die"
"$FP" restore -D "$WORK/d4" --engine native -d -o "$WORK/native4.log" >/dev/null || fail "restore of the pre-copy image"
! grep -q "new IPC namespace" "$WORK/native4.log" || fail "a new IPC namespace although the ids were free"
verify "after restoring the pre-copy image" 3
kill -TERM "$pid"
wait_for 15 gone || fail "ct_sysvshm did not end on SIGTERM"
[[ $(tail -n 1 "$st") == "verify 4 ok"* ]] || fail "last verification: $(tail -n 1 "$st")"

echo ok
