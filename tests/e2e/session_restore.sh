# forkpoint restore SESSION SNAP: the session goes back to a snapshot, again
# and again, and in a chain of snap+restore; bad snapshots leave it untouched.
source "$(dirname "$0")/../lib.sh"
st=$WORK/status

"$FP" run --detach --name rs -- "$T/ct_threads" "$st" >/dev/null || fail "run"
track_pid "$(session_field rs helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field rs target_pid)
track_pid "$pid"

"$FP" snap rs base >/dev/null || fail "snap"
v=$(ct_verify "$st" "$pid") || fail "verify before restore: $v"
[[ $v == "verify 1 ok"* ]] || fail "unexpected first verify: $v"

# Back to the snapshot: same pid and tids, memory from before verify 1.
for round in 1 2 3; do
	out=$("$FP" restore rs base --json) || fail "restore round $round: $out"
	npid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out")
	[[ $npid == "$pid" ]] || fail "restored pid $npid, want $pid"
	v=$(ct_verify "$st" "$pid") || fail "verify after restore $round: $v"
	[[ $v == "verify 1 ok"* ]] || fail "round $round: state not rolled back: $v"
	[[ $(ls /proc/$pid/task | wc -l) == 9 ]] || fail "round $round: thread count $(ls /proc/$pid/task | wc -l)"
done

# A chain: snapshot the restored process, restore that, 100 times; every
# thread proves its state at each step.
cst=$WORK/chain.status
"$FP" run --detach --name chain -- "$T/ct_threads" "$cst" >/dev/null || fail "run chain"
track_pid "$(session_field chain helper_pid)"
wait_for 20 grep -q '^ready' "$cst" || fail "chain target not ready"
cpid=$(session_field chain target_pid)
for i in $(seq 1 100); do
	"$FP" snap chain "c$i" >/dev/null || fail "chain snap $i"
	out=$("$FP" restore chain "c$i" 2>&1) || fail "chain restore $i: $out"
	v=$(ct_verify "$cst" "$cpid") || fail "chain $i verify: $v"
	[[ $v == "verify $i ok"* ]] || fail "chain $i: $v"
	(( i % 10 )) || "$FP" rm chain $(seq -f 'c%g' $((i - 9)) $((i - 1))) >/dev/null
done
"$FP" stop chain

# A full restore (not in place: FORKPOINT_FAULT=rollback-full) that fails
# after the processes were stopped brings back the state from before it:
# same pid, memory from after verify 1.
fst=$WORK/fail.status
FORKPOINT_FAULT=rollback-full FORKPOINT_RESTORE_FAIL_AT=registers "$FP" run --detach --name rb -- "$T/ct_threads" "$fst" >/dev/null || fail "run rb"
track_pid "$(session_field rb helper_pid)"
wait_for 20 grep -q '^ready' "$fst" || fail "rb target not ready"
fpid=$(session_field rb target_pid)
"$FP" snap rb s0 >/dev/null || fail "snap rb"
v=$(ct_verify "$fst" "$fpid") || fail "rb verify 1: $v"
err=$("$FP" restore rb s0 2>&1) && fail "a restore failing on purpose succeeded: $err"
[[ $err == *"back in its state from before the restore"* ]] || fail "failed restore message: $err"
[[ $(session_field rb target_pid) == "$fpid" ]] || fail "rollback changed the pid"
v=$(ct_verify "$fst" "$fpid") || fail "verify after the rollback: $v"
[[ $v == "verify 2 ok"* ]] || fail "rollback did not keep the state from before the restore: $v"
"$FP" restore rb s0 >/dev/null || fail "a second restore (no failure armed) failed"
v=$(ct_verify "$fst" "$fpid") || fail "verify after restore: $v"
[[ $v == "verify 1 ok"* ]] || fail "restore after rollback: $v"
"$FP" stop rb

# Bad requests leave the session running untouched.
err=$("$FP" restore rs no-such-snap 2>&1) && fail "missing snapshot accepted"
[[ $err == *"no complete snapshot"* ]] || fail "missing snapshot message: $err"
dir=$FORKPOINT_HOME/sessions/rs/snapshots/base
cp -a "$dir" "$dir-corrupt" && mv "$dir-corrupt" "$FORKPOINT_HOME/sessions/rs/snapshots/corrupt"
f=$(ls "$FORKPOINT_HOME/sessions/rs/snapshots/corrupt"/pages-*.img | head -n1)
truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
err=$("$FP" restore rs corrupt 2>&1) && fail "corrupt snapshot accepted"
[[ $err == *"left as it was"* ]] || fail "corrupt snapshot message: $err"
[[ $(session_field rs target_pid) == "$pid" ]] || fail "session changed after a refused restore"
v=$(ct_verify "$st" "$pid") || fail "verify after refused restore: $v"

"$FP" stop rs
echo ok
