# forkpoint run --workdir: a program's files and memory are snapshotted at the
# same instant and restored together, to each snapshot in turn; DIR itself is
# never written; diff lists what changed; rm and gc free layers.
source "$(dirname "$0")/../lib.sh"
st=$WORK/status
dir=$WORK/project
mkdir -p "$dir"
echo "the user's file" >"$dir/README"
before=$(cd "$dir" && find . -printf '%p %s %m\n' | sort | md5sum)

"$FP" run --detach --name ws --workdir "$dir" -- "$T/ct_workspace" "$st" --dir="$dir" >/dev/null || fail "run --workdir"
track_pid "$(session_field ws helper_pid)"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field ws target_pid)
track_pid "$pid"

# Steps 0, 1, 2, each snapshotted; every verify checks files against memory.
"$FP" snap ws s0 >/dev/null || fail "snap s0"
v=$(ct_verify "$st" "$pid") || fail "verify at step 0: $v"      # then advances to 1
"$FP" snap ws s1 >/dev/null || fail "snap s1"
v=$(ct_verify "$st" "$pid") || fail "verify at step 1: $v"      # -> 2
[[ $v == *step=1* ]] || fail "expected step 1: $v"
"$FP" snap ws s2 >/dev/null || fail "snap s2"
v=$(ct_verify "$st" "$pid") || fail "verify at step 2: $v"      # -> 3

# The user's directory was never written.
after=$(cd "$dir" && find . -printf '%p %s %m\n' | sort | md5sum)
[[ $before == "$after" ]] || fail "the real DIR changed: $(ls -la "$dir")"

# Back to each snapshot in turn: files and memory agree at every one.
for s in s1 s0 s2 s1; do
	"$FP" restore ws $s >/dev/null || fail "restore $s"
	v=$(ct_verify "$st" "$pid") || fail "after restore $s: $v"
	want=${s#s}
	[[ $v == *step=$want* ]] || fail "after restore $s: expected step $want: $v"
done

# diff between snapshots names what changed.
d=$("$FP" diff ws s0 s1) || fail "diff: $d"
grep -q 'step-1.txt' <<<"$d" || fail "diff s0 s1 misses step-1.txt: $d"
grep -q 'current.txt' <<<"$d" || fail "diff s0 s1 misses current.txt: $d"
grep -q 'dir-1' <<<"$d" || fail "diff s0 s1 misses the renamed dir: $d"

# rm + gc keep what remaining snapshots need: restoring s2 still works.
"$FP" rm ws s1 || fail "rm s1"
"$FP" gc >/dev/null || fail "gc"
"$FP" restore ws s2 >/dev/null || fail "restore s2 after rm+gc"
v=$(ct_verify "$st" "$pid") || fail "after rm+gc restore s2: $v"
[[ $v == *step=2* ]] || fail "after rm+gc: expected step 2: $v"
"$FP" list ws --json | python3 -c 'import json,sys; n=[s["name"] for s in json.load(sys.stdin)]; assert n==["s0","s2"], n' || fail "list after rm"

"$FP" stop ws

# A full restore (FORKPOINT_FAULT=rollback-full: never in place) that fails
# half way (after the processes were stopped) leaves
# files and memory as they were before it, never a mix.
st2=$WORK/status2
dir2=$WORK/project2
mkdir -p "$dir2"
FORKPOINT_FAULT=rollback-full FORKPOINT_RESTORE_FAIL_AT=registers "$FP" run --detach --name wsrb --workdir "$dir2" -- "$T/ct_workspace" "$st2" --dir="$dir2" >/dev/null ||
	fail "run wsrb"
track_pid "$(session_field wsrb helper_pid)"
wait_for 20 grep -q '^ready' "$st2" || fail "wsrb not ready: $(cat "$st2")"
pid2=$(session_field wsrb target_pid)
"$FP" snap wsrb s0 >/dev/null || fail "snap wsrb s0"
v=$(ct_verify "$st2" "$pid2") || fail "wsrb step 0: $v"       # -> step 1
err=$("$FP" restore wsrb s0 2>&1) && fail "a restore failing on purpose succeeded"
[[ $err == *"back in its state from before the restore"* ]] || fail "failed restore: $err"
v=$(ct_verify "$st2" "$pid2") || fail "after the rolled-back restore: $v"
[[ $v == *step=1* ]] || fail "after the rolled-back restore: expected step 1: $v"
"$FP" restore wsrb s0 >/dev/null || fail "restore wsrb s0"
v=$(ct_verify "$st2" "$pid2") || fail "after restore s0: $v"
[[ $v == *step=0* ]] || fail "after restore s0: expected step 0: $v"
"$FP" stop wsrb
echo ok
