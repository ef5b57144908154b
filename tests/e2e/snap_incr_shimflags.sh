# Under the shim, a process of many small mappings (2,048 one-page ones,
# under 64 MiB in all) gets its VmFlags at an incremental snapshot's stop
# from the preparation when the shim's log shows no mapping change since
# (no smaps read while stopped; /proc/PID/maps at the stop is the check and
# the flags are read again after the resume). dump.log says which way each
# snapshot went; with FORKPOINT_NO_SHIM_FLAGS=1 the stop reads smaps as
# before. Each snapshot restores and the target checks every page.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/heap.st
"$FP" run --detach --name sf -- "$T/ct_heap" "$st" --mib=2 --maps=2048 --quiet-stdio >/dev/null || fail "run"
track_pid "$(session_field sf helper_pid)"
wait_for 30 grep -q '^ready ' "$st" || fail "target not ready: $(cat "$st")"
track_pid "$(session_field sf target_pid)"
S=$FORKPOINT_HOME/sessions/sf/snapshots

snap_json sf a "$WORK/a.json"
snap_json sf b "$WORK/b.json"
snap_json sf c "$WORK/c.json"
for n in b c; do
	[[ $(json_field "$WORK/$n.json" full) == False ]] || fail "$n was not incremental: $(cat "$WORK/$n.json")"
	grep -q "no mapping change in the shim's log since the preparation: VmFlags of its [0-9]* mappings from then" \
		"$S/$n/dump.log" || fail "$n: VmFlags not taken from the preparation: $(grep -i 'vmflags\|registered' "$S/$n/dump.log")"
	! grep -q "changed since the pre-copy: VmFlags read now" "$S/$n/dump.log" ||
		fail "$n: /proc/PID/maps at the stop differed from the preparation's"
	grep -q "VmFlags check after the resume" "$S/$n/dump.log" || fail "$n: no VmFlags check after the resume"
done
restore_check sf c "$st"
restore_check sf b "$st"
"$FP" stop --kill sf >/dev/null 2>&1

# the same without the shim's help: smaps while stopped
FORKPOINT_NO_SHIM_FLAGS=1 "$FP" run --detach --name sg -- "$T/ct_heap" "$WORK/g.st" --mib=2 --maps=2048 --quiet-stdio \
	>/dev/null || fail "run sg"
track_pid "$(session_field sg helper_pid)"
wait_for 30 grep -q '^ready ' "$WORK/g.st" || fail "sg not ready"
track_pid "$(session_field sg target_pid)"
snap_json sg a "$WORK/ga.json"
snap_json sg b "$WORK/gb.json"
! grep -q "VmFlags of its [0-9]* mappings from then" "$FORKPOINT_HOME/sessions/sg/snapshots/b/dump.log" ||
	fail "FORKPOINT_NO_SHIM_FLAGS=1 did not turn it off"
restore_check sg b "$WORK/g.st"
"$FP" stop --kill sg >/dev/null 2>&1
echo ok
