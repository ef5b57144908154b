# The write tracking under a pass of the read ahead that protects the
# written pages again (FP_ROLLBACK_AHEAD_PROTECT=1,
# helper/session/rollback_ahead.c), each pass held with the process's
# pagemap open (FORKPOINT_FAULT=rollback-ahead-protect):
#   - an exec under the pass: its walk finds the old memory gone. No
#     failure of the tracking: the next restore is a full one that says the
#     process ran exec (as without the pass), and the processes are SNAP's.
#   - a pass that protected pages and then ran out of memory recording them
#     (FORKPOINT_FAULT=rollback-ahead-nomem-1): the pages it protected no
#     longer read as written and no list holds them, so the tracking is
#     void. The next snapshot is full and says why, and it and the
#     snapshot before restore exactly.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"

start() { # NAME FAULTS: a ct_explore session, its pass held at its walks
	name=$1
	st=$WORK/$name.status
	D=$FORKPOINT_HOME/sessions/$name
	H=$D/rollback-ahead-protect
	FP_ROLLBACK_AHEAD_PROTECT=1 FORKPOINT_FAULT=$2 explore_session "$name" 8
	step 1
	"$FP" snap "$name" s1 >/dev/null || fail "$name: snap s1"
	step 1
	ahead_hold # a pass at rest, about to protect the target's pages again
}
let_go() {
	rm -f "$H.paused"
	touch "$H.go"
}

start ax rollback-ahead-protect
kill -RTMIN "$pid"
wait_for 20 bash -c "grep -q sleep /proc/$pid/cmdline" || fail "ax: no exec"
let_go
"$FP" restore ax s1 --json >"$WORK/r.json" || fail "ax: restore after the exec: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == False ]] || fail "ax: in place after an exec: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" why) == *exec* ]] ||
	fail "ax: the restore does not say the process ran exec: $(cat "$WORK/r.json")"
pid=$(session_field ax target_pid)
track_pid "$pid"
at 1
"$FP" stop ax

# the fault fires in the first walk that protects, after it protected; the
# job ends there, and the snapshot's request waits for it to end
start an rollback-ahead-protect,rollback-ahead-nomem-1
let_go
snap_json an s2 "$WORK/s2.json"
full_because "$WORK/s2.json" "*failed between requests*out of memory*"
at 2
back_to an s1 1
back_to an s2 2
"$FP" stop an
echo ok
