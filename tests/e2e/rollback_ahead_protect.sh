# Between requests the read ahead also protects again the pages written
# since the tracking's snapshot, and copies their live contents after that
# (helper/session/rollback_ahead.c). Those pages no longer read as written,
# so every reader of the tracking adds them: a snapshot holds them, a
# rollback writes SNAP's back over them and saves their live contents from
# the copies ("saved_ahead_bytes"), and an undo writes those copies back.
# A pass protects only when the processes are at rest (less than a tenth of
# the time since the last look on a CPU). Each pass is held until the test
# lets it go (FORKPOINT_FAULT=rollback-ahead-pass), and ct_grow checks
# every page at each verification (200 pages rewritten each time), so that:
#   - a rollback after a pass is exact, and saves the pages from the copies;
#   - pages written again after the pass are read at the stop;
#   - a snapshot taken after a pass holds the pages it protected (its
#     pre-copy takes them from the copies): a rollback to an older
#     snapshot and then back to it is exact;
#   - a rollback that fails half way after a pass leaves every page as it
#     was (its undo writes the copies back);
#   - a pass whose walk a request cuts short drops the copies of the pages
#     that walk protected again (written since their copy);
#   - a snapshot that makes no walk before its stop (the pass walked, the
#     process at rest) reads the pages written after the pass at the stop;
# with the snapshot's pre-copy (and without: FP_DUMP_NO_PRECOPY_WRITTEN=1),
# the rollback's fast comparison (and its full walk: FP_ROLLBACK_FULL_WALK=1),
# and with pages emptied and faulted in between (--drop).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

P=$((200 * 4096)) # the heap pages a verification writes

protected() { # two passes: the first may find the process still busy with
	# its verification, the second finds it at rest, and protects its pages
	ahead_go_on
	ahead_go_on
}
restore() { # SNAP: in place, its JSON in $WORK/r.json
	"$FP" restore "$name" "$1" --json >"$WORK/r.json" || fail "$name: restore $1: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "$name: $1 not in place: $(cat "$WORK/r.json")"
}
saved() { json_field "$WORK/r.json" saved_ahead_bytes; }

start() { # NAME [ENV=VALUE...] -- CT_GROW_ARGS...
	name=$1
	shift
	local envs=()
	while [[ $1 != -- ]]; do envs+=("$1") && shift; done
	shift
	st=$WORK/$name.st
	D=$FORKPOINT_HOME/sessions/$name
	H=$D/rollback-ahead-pass
	env FP_ROLLBACK_AHEAD_PROTECT=1 "${envs[@]}" FORKPOINT_FAULT="${FAULT:-rollback-ahead-pass}" "$FP" run --detach --name "$name" -- \
		"$T/ct_grow" "$st" --mib=16 --write-pages=200 "$@" --quiet-stdio >/dev/null || fail "$name: run"
	track_pid "$(session_field "$name" helper_pid)"
	wait_for 20 grep -q '^ready ' "$st" || fail "$name: target not ready: $(cat "$st")"
	pid=$(session_field "$name" target_pid)
	track_pid "$pid"
}

core() { # NAME [ENV=VALUE...] -- CT_GROW_ARGS...
	start "$@"
	grow_verify 1
	snap_json "$name" s1 "$WORK/s1.json" # full
	ahead_hold                                 # s1's read ahead, at its start
	grow_verify 2
	protected # verification 2's pages protected again and copied
	restore s1
	grow_verify 2 # exact: verification 1's state (SNAP's pages written over the protected ones)
	(($(saved) >= P)) || fail "$name: rollback after a pass: $(saved) bytes saved from its copies, want $P at least: $(cat "$WORK/r.json")"

	ahead_go_on     # the one before ends: s1's again, held at its start
	protected # verification 2's pages
	grow_verify 3  # 200 more, after the pass: read at the stop
	restore s1
	grow_verify 2
	local all
	all=$(($(json_field "$WORK/r.json" pages) * 4096))
	(($(saved) >= P && $(saved) < all)) ||
		fail "$name: rollback with pages written after the pass: $(saved) of $all bytes saved from its copies"

	ahead_go_on
	protected # verification 2's pages
	snap_json "$name" s2 "$WORK/s2.json"
	[[ $(json_field "$WORK/s2.json" full) == False ]] || fail "$name: s2 is full: $(cat "$WORK/s2.json")"
	# its pages from the pass's copies (its pre-copy's; none without it)
	local ahead
	ahead=$(json_field "$WORK/s2.json" pages_ahead)
	if [[ $name == noprecopy ]]; then
		((ahead == 0)) || fail "$name: s2 took $ahead pages from the copies without its pre-copy"
	else
		((ahead >= 200)) || fail "$name: s2 took $ahead pages from the copies, want 200 at least: $(cat "$WORK/s2.json")"
	fi
	ahead_go_on      # s2's, held at its start
	restore s1 # verification 2's pages back to s1's: only if s2 holds them
	grow_verify 2   # (or they still hold verification 2's)
	ahead_go_on
	restore s2 # and to s2's
	grow_verify 3
	"$FP" stop --kill "$name" >/dev/null 2>&1
	echo "$name: ok"
}

core pre --
core noprecopy FP_DUMP_NO_PRECOPY_WRITTEN=1 --
core walk FP_ROLLBACK_FULL_WALK=1 FP_ROLLBACK_CHECK=1 --
core drop -- --drop

# A walk that protects pages again, cut short by a request: the copies of
# the pages it protected, written since they were copied, are stale and
# must be dropped though the pass does not go on to copy again. Held at the
# walk (FORKPOINT_FAULT=rollback-ahead-reprotect) until the snapshot's
# request comes; ct_grow's own variables and stack are written at each
# verification, and are in the walk's first piece.
FAULT=rollback-ahead-pass,rollback-ahead-reprotect start cut --
R=$D/rollback-ahead-reprotect
grow_verify 1
snap_json cut c1 "$WORK/c1.json"
ahead_hold
grow_verify 2
protected     # copies of what verification 2 wrote
grow_verify 3 # written again
touch "$R.arm"
reprotect_held() { # passes let go until one protects again, held
	[[ -e $R.paused ]] && return 0
	[[ -e $H.paused && ! -e $H.go ]] && rm -f "$H.paused" && touch "$H.go"
	return 1
}
wait_for 20 reprotect_held || fail "cut: no pass protected the pages again"
snap_json cut c2 "$WORK/c2.json"
ahead_go_on # c2's read ahead, held at its start
restore c1
grow_verify 2
ahead_go_on
restore c2 # verification 3's state: only if c2 took no stale copy
grow_verify 4
"$FP" stop --kill cut >/dev/null 2>&1

# A snapshot after a pass that protected every written page, of a process
# that has hardly run since, makes no walk of its own before the stop
# (dump_incr_precopy.c); FP_DUMP_PRECOPY_REST_CPU_MS raises that bound
# here, so that 200 pages written after the pass are left to the stop,
# which must find and read them.
start rest FP_DUMP_PRECOPY_REST_CPU_MS=100000 --
grow_verify 1
snap_json rest t1 "$WORK/t1.json"
ahead_hold
grow_verify 2
protected     # verification 2's pages protected again and copied
grow_verify 3 # 200 more, after the pass
snap_json rest t2 "$WORK/t2.json"
grep -q "no walk before the stop" "$D/snapshots/t2/dump.log" || fail "rest: t2 walked before its stop"
ahead_go_on # t2's read ahead, held at its start
restore t1
grow_verify 2
ahead_go_on
restore t2 # verification 3's state: the pass's copies and the stop's reads
grow_verify 4
"$FP" stop --kill rest >/dev/null 2>&1

# The undo of a rollback that fails half way writes the copies back.
FAULT=rollback-ahead-pass,rollback-after-40-pages start undo --
grow_verify 1
snap_json undo u1 "$WORK/u1.json"
ahead_hold
grow_verify 2
protected # verification 2's pages protected again and copied
err=$("$FP" restore undo u1 --json 2>&1) && fail "undo: a rollback failing on purpose succeeded: $err"
[[ $err == *"back in its state from before"* ]] || fail "undo: message: $err"
grow_verify 3 # every page as after verification 2
ahead_go_on
restore u1 # the fault fires once: in place now
grow_verify 2
"$FP" stop --kill undo >/dev/null 2>&1
echo ok
