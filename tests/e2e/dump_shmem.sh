# Shared memory between a parent and its forked child (ct_shmem: shared
# anonymous memory, part of it at an offset of its object, and memfds with
# seals, mapped shared and private and held as fds with an offset), four
# ways: forkpoint dump + native restore; forkpoint dump + `criu restore` of
# the decompressed image; `criu dump` + native restore; and
# `dump --leave-running` (pre-copy and fork copy) with the original still
# passing its check and the image restoring. After each restore the target
# proves the memory is still one object: main writes a token, the child
# must see it and answer in the same memory.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (map_files, clone3 set_tid)"; exit 77; }

st=$WORK/shm.status
start() {
	rm -f "$st"
	(cd "$WORK" && exec setsid "$T/ct_shmem" "$st" --memfd --same-pid --quiet-stdio </dev/null >/dev/null 2>&1 &)
	wait_for 20 grep -qs '^ready' "$st" || fail "ct_shmem not ready: $(cat "$st" 2>/dev/null)"
	pid=$(awk '/^ready/{print $2}' "$st")
	kid=$(awk '/^info child/{print $4}' "$st")
	track_pid "$pid"; track_pid "$kid"
}
gone() { [[ ! -e /proc/$pid && ! -e /proc/$kid ]]; }
stop_all() { kill -9 "$pid" "$kid" 2>/dev/null; wait_for 15 gone || fail "ct_shmem did not die"; }
verify() { # WHAT EXPECTED-N
	local v
	v=$(ct_verify "$st" "$pid") || fail "$1: $v"
	[[ $v == "verify $2 ok"* ]] || fail "$1: $v"
}

# 1. forkpoint dump + native restore.
start
verify "before the dump" 1
"$FP" dump -t "$pid" -D "$WORK/d1" >/dev/null || fail "dump"
wait_for 15 gone || fail "the tree is still there after the dump"
grep -q '^pages .*' "$WORK/d1/forkpoint.manifest" || fail "no pages lines"
ls "$WORK"/d1/pagemap-shmem-*.img >/dev/null || fail "no pagemap-shmem images"
[[ -e $WORK/d1/memfd.img ]] || fail "no memfd.img"
n=$(ls "$WORK"/d1/pagemap-shmem-*.img | wc -l)
((n == 5)) || fail "expected 5 shared objects (3 anonymous, 2 memfds), got $n: each dumped once for the tree"
out=$("$FP" restore -D "$WORK/d1" --engine native -d -o "$WORK/native1.log" 2>&1) || fail "native restore: $out"
[[ $out == "$pid" ]] || fail "native restore printed '$out'"
grep -q "natively (2 processes)" "$WORK/native1.log" || fail "not restored natively: $(tail -n 3 "$WORK/native1.log")"
grep -q 'dev/zero (deleted)' "/proc/$pid/maps" || fail "shared anonymous memory is not /dev/zero any more"
verify "after the native restore" 2
verify "again after the native restore" 3
stop_all

# 2. the same image through `criu restore`.
if find_criu; then
	"$FP" decompress "$WORK/d1" || fail "decompress"
	(cd "$WORK/d1" && criu_run restore -D . -d -v4 -o criu-restore.log) ||
		fail "criu restore: $(grep -E 'Error' "$WORK/d1/criu-restore.log" | head -n 5)"
	verify "after criu restore" 2
	stop_all
else
	skip_part "criu restore of forkpoint's shared memory image"
fi

# 3. `criu dump` + native restore (CRIU 4.2 dumps shared anonymous memory
# as memfds named /dev/zero here).
if find_criu; then
	start
	verify "before criu dump" 1
	mkdir -p "$WORK/c3"
	criu_run dump -t "$pid" -D "$WORK/c3" -o dump.log || fail "criu dump: $(grep Error "$WORK/c3/dump.log" | head -n 5)"
	wait_for 15 gone || fail "criu dump left the tree"
	out=$("$FP" restore -D "$WORK/c3" --engine native -d -o "$WORK/native3.log" 2>&1) || fail "native restore of criu's dump: $out"
	grep -q "natively (2 processes)" "$WORK/native3.log" || fail "criu's dump not restored natively"
	verify "after the native restore of criu's dump" 2
	stop_all
else
	skip_part "native restore of criu's dump of shared memory"
fi

# 4. --leave-running: the original passes its check, the image restores.
start
verify "before the live dumps" 1
"$FP" dump -R -t "$pid" -D "$WORK/d4" --pages precopy >"$WORK/out4" || fail "pre-copy dump: $(cat "$WORK/out4")"
grep -q 'pages by precopy' "$WORK/out4" || fail "not a pre-copy: $(cat "$WORK/out4")"
verify "the original after the pre-copy dump" 2
"$FP" dump -R -t "$pid" -D "$WORK/d5" --pages fork >"$WORK/out5" || fail "fork dump: $(cat "$WORK/out5")"
verify "the original after the fork dump" 3
stop_all
"$FP" restore -D "$WORK/d4" --engine native -d >/dev/null || fail "restore of the pre-copy image"
verify "after restoring the pre-copy image" 2
stop_all
"$FP" restore -D "$WORK/d5" --engine native -d >/dev/null || fail "restore of the fork image"
verify "after restoring the fork image" 3
stop_all

echo ok
