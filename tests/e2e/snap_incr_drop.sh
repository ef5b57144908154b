# Incremental snapshots of memory whose pages come and go without being
# written (ct_grow --drop: a whole 2 MiB block emptied with MADV_DONTNEED,
# its page table freed by the kernel; single pages emptied; pages written
# where there were none; zero-page reads). Each snapshot, restored from its
# images with the session's program gone, must pass the target's check of
# every page, and so must the last one restored by plain CRIU from its
# parent chain.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/drop.st
grow_session sd --mib=4 --write-pages=2 --drop
line=$(ct_verify "$st" "$pid") || fail "verification 1: $line"
snap_json sd s1 "$WORK/s1.json"
for n in 2 3 4 5 6; do
	line=$(ct_verify "$st" "$pid") || fail "verification $n: $line"
	snap_json sd "s$n" "$WORK/s$n.json"
	[[ $(json_field "$WORK/s$n.json" full) == False ]] || fail "s$n is a full snapshot: $(json_field "$WORK/s$n.json" why)"
done

# Each snapshot from its images: the program stopped, the session restored.
for n in 6 3 5 2 4; do
	"$FP" stop --kill sd >/dev/null 2>&1
	wait_for 20 grep -q '^state=exited' "$FORKPOINT_HOME/sessions/sd/session.meta" || fail "the session did not end"
	wait_for 30 bash -c "! kill -0 $pid 2>/dev/null" || fail "pid $pid still taken"
	"$FP" restore sd "s$n" --json >"$WORK/r$n.json" || fail "restore s$n: $(cat "$WORK/r$n.json")"
	python3 -c "import json,sys; assert not json.load(open(sys.argv[1])).get('in_place')" "$WORK/r$n.json" ||
		fail "s$n was rolled back in place: $(cat "$WORK/r$n.json")"
	track_pid "$(session_field sd helper_pid)"
	pid=$(session_field sd target_pid)
	track_pid "$pid"
	line=$(ct_verify "$st" "$pid") || fail "restored s$n: $line"
	[[ $line == "verify $((n + 1)) ok"* ]] || fail "restored s$n answered '$line'"
done

# The last one by CRIU, from the chain (decompressed in place if need be).
"$FP" stop --kill sd >/dev/null 2>&1
wait_for 30 bash -c "! kill -0 $pid 2>/dev/null" || fail "pid $pid still taken"
"$FP" decompress "$S/s6" >/dev/null 2>&1 || fail "decompress s6"
criu_restore_verify "$S/s6" "$st" "$pid"
echo ok
