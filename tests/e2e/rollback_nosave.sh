# FP_ROLLBACK_SAVE=0: a rollback in place that does not save the live pages
# it overwrites. Failing half way (FORKPOINT_FAULT: after N pages were
# written back) it cannot bring the state before back, so it must not leave
# the mix: the session ends in SNAP's state through a full restore. The
# target proves every page, area, offset and thread (`at`). Without a
# fault the rollback is in place and complete. Both with SNAP's pages held
# in memory and streamed through a window (rollback-window-N-pages).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"

one() { # NAME FAULTS
	local name=$1
	st=$WORK/$name.status
	FP_ROLLBACK_SAVE=0 FORKPOINT_FAULT=$2 "$FP" run --detach --name "$name" -- "$T/ct_explore" "$st" \
		--mib=16 >/dev/null || fail "$name: run"
	track_pid "$(session_field "$name" helper_pid)"
	wait_for 20 grep -q '^ready' "$st" || fail "$name: target not ready: $(cat "$st")"
	pid=$(session_field "$name" target_pid)
	track_pid "$pid"
	step 1
	"$FP" snap "$name" s1 >/dev/null || fail "$name: snap s1"
	step 4 # areas made, protected and removed; ~4% of the pages written
	at 5
	"$FP" restore "$name" s1 --json >"$WORK/r1.json" 2>&1 ||
		fail "$name: the failed rollback did not end in SNAP: $(cat "$WORK/r1.json")"
	[[ $(json_field "$WORK/r1.json" in_place) == False ]] || fail "$name: in place despite the fault: $(cat "$WORK/r1.json")"
	grep -q "were not saved" "$WORK/r1.json" || fail "$name: why: $(cat "$WORK/r1.json")"
	pid=$(session_field "$name" target_pid)
	track_pid "$pid"
	at 1 # every page as SNAP's: not the mix the failed rollback left
	step 4
	at 5
	"$FP" snap "$name" s5 >/dev/null || fail "$name: snap s5"
	step 2
	at 7
	"$FP" restore "$name" s5 --json >"$WORK/r2.json" || fail "$name: restore without the fault: $(cat "$WORK/r2.json")"
	[[ $(json_field "$WORK/r2.json" in_place) == True ]] || fail "$name: not in place: $(cat "$WORK/r2.json")"
	at 5
	"$FP" restore "$name" s1 --json >"$WORK/r3.json" || fail "$name: restore s1: $(cat "$WORK/r3.json")"
	[[ $(json_field "$WORK/r3.json" in_place) == True ]] || fail "$name: s1 not in place: $(cat "$WORK/r3.json")"
	at 1
	"$FP" stop "$name"
}
one rn rollback-after-40-pages
one rw rollback-after-40-pages,rollback-window-8-pages
echo ok
