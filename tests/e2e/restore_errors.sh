# Bad images are refused before any process exists, with a clear message and
# a non-zero exit, by every engine: corrupt entries, a truncated pages file,
# a missing or changed file, another architecture, another image version, a
# pid in use. A restore that fails half way leaves nothing behind.
source "$(dirname "$0")/../lib.sh"
need_criu
[[ $(id -u) == 0 ]] || { echo "needs root (clone3 set_tid)"; exit 77; }
command -v crit >/dev/null || { echo "no crit (pycriu) to edit images"; exit 77; }

# A private copy of the target binary: the "missing file" and "changed
# size" cases change it.
mkdir -p "$WORK/bin"
cp "$T/ct_heap" "$WORK/bin/ct_heap"
ST=$WORK/heap.status
"$WORK/bin/ct_heap" "$ST" --mib=2 --setsid --quiet-stdio </dev/null >"$WORK/heap.out" 2>&1 &
TPID=$!; track_pid "$TPID"
wait_for 20 grep -q '^ready' "$ST" || fail "target did not get ready"
mkdir "$WORK/good"
criu_run dump -t "$TPID" -D "$WORK/good" -o dump.log -v4 || fail "criu dump failed"
wait "$TPID" 2>/dev/null

children() { pgrep -P $$ | wc -l; }
# expect_refused CASE ENGINE PATTERN: restoring $WORK/CASE fails, says PATTERN,
# and creates no process (the pid stays free, no new child appears).
expect_refused() {
	local dir=$WORK/$1 before out rc
	before=$(children)
	out=$("$FP" restore -D "$dir" --engine "$2" -d -o "$WORK/$1.$2.log" 2>&1); rc=$?
	[[ $rc != 0 ]] || fail "$1 ($2): restore succeeded"
	grep -qiE "$3" <<<"$out" || fail "$1 ($2): message does not say '$3': $out"
	! kill -0 "$TPID" 2>/dev/null || fail "$1 ($2): a process with pid $TPID exists"
	[[ $(children) == "$before" ]] || fail "$1 ($2): a new child process appeared"
	echo "$1 ($2): $out"
}
copy() { rm -rf "$WORK/$1"; cp -r "$WORK/good" "$WORK/$1"; }
set_u32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($2 & 255)) $(($2 >> 8 & 255)) $(($2 >> 16 & 255)) $(($2 >> 24 & 255)))" |
	dd of="$1" bs=1 seek="$3" conv=notrunc status=none; }

copy corrupt-len; set_u32 "$WORK/corrupt-len/core-$TPID.img" 0x7fffffff 8
copy corrupt-magic; set_u32 "$WORK/corrupt-magic/mm-$TPID.img" 0x12345678 4
copy corrupt-bytes # a length that cuts a message in the middle of a field
set_u32 "$WORK/corrupt-bytes/pagemap-$TPID.img" 3 8
copy truncated; truncate -s -4096 "$WORK/truncated/pages-1.img"
copy no-core; rm "$WORK/no-core/core-$TPID.img"
copy march
crit decode -i "$WORK/march/core-$TPID.img" -o "$WORK/core.json" || fail "crit decode"
sed -i 's/"mtype": "X86_64"/"mtype": "AARCH64"/' "$WORK/core.json"
crit encode -i "$WORK/core.json" -o "$WORK/march/core-$TPID.img" || fail "crit encode"
copy version
crit decode -i "$WORK/version/inventory.img" -o "$WORK/inv.json" || fail "crit decode"
sed -i 's/"img_version": 2/"img_version": 3/' "$WORK/inv.json"
crit encode -i "$WORK/inv.json" -o "$WORK/version/inventory.img" || fail "crit encode"

for engine in native criu auto; do
	expect_refused corrupt-len $engine "core-$TPID.img"
	expect_refused corrupt-magic $engine "mm-$TPID.img.*magic|magic.*mm-$TPID.img"
	expect_refused corrupt-bytes $engine "pagemap-$TPID.img"
	expect_refused truncated $engine "truncated"
	expect_refused no-core $engine "core-$TPID.img"
	expect_refused march $engine "architecture"
	expect_refused version $engine "version 3"
done

# The executable went away / changed size after the dump.
mv "$WORK/bin/ct_heap" "$WORK/bin/ct_heap.moved"
for engine in native criu; do expect_refused good $engine "ct_heap.*(No such file|missing)"; done
mv "$WORK/bin/ct_heap.moved" "$WORK/bin/ct_heap"
cp "$WORK/bin/ct_heap" "$WORK/bin/ct_heap.orig"
echo x >>"$WORK/bin/ct_heap"
for engine in native criu; do expect_refused good $engine "ct_heap has size .* but had"; done
cp "$WORK/bin/ct_heap.orig" "$WORK/bin/ct_heap"

# Failing half way (forced after each step) leaves no process behind.
for step in memory threads files signals mm registers; do
	before=$(children)
	out=$(FORKPOINT_RESTORE_FAIL_AT=$step "$FP" restore -D "$WORK/good" --engine native -d -o "$WORK/half.log" 2>&1) &&
		fail "forced failure at $step: restore succeeded"
	grep -q "on purpose" <<<"$out" || fail "forced failure at $step: $out"
	! kill -0 "$TPID" 2>/dev/null || fail "forced failure at $step left pid $TPID behind"
	[[ $(children) == "$before" ]] || fail "forced failure at $step left a child behind"
done

# The good image restores; a second restore of it finds the pid in use.
pid=$("$FP" restore -D "$WORK/good" --engine native -d -o "$WORK/ok.log") || fail "good image: restore failed"
[[ $pid == "$TPID" ]] || fail "good image restored as '$pid'"
out=$("$FP" restore -D "$WORK/good" --engine native --exact-pids -d -o "$WORK/twice.log" 2>&1) &&
	fail "restored a second copy with --exact-pids"
grep -q "pid $TPID is in use" <<<"$out" || fail "pid in use not named: $out"
kill -USR2 "$TPID"
wait_for 20 grep -q '^verify 1 ' "$ST" || fail "restored process does not answer"
grep -q '^verify 1 ok' "$ST" || fail "$(grep '^verify 1' "$ST")"
kill -9 "$TPID"
echo ok
