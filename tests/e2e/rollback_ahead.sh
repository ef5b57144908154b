# After each reply to `snap` or to a rollback in place, the session helper
# reads SNAP's contents of the pages written since the tracking's snapshot
# while it waits (helper/session/rollback_ahead.c), and a rollback to that
# snapshot writes them back from there ("pages_from": "ahead"). Each pass
# of the read ahead is held here until the test lets it go
# (FORKPOINT_FAULT=rollback-ahead-pass), so that the target's writes come
# before or after a pass as the test says. ct_grow rewrites 200 pages at
# each verification and checks every page, so each rollback is proven:
#   - pages written before a pass: all of them from it (what is read at
#     the request is only memory the tracking does not cover);
#   - 200 more written after the last pass: those read at the request;
#   - a rollback to an older snapshot: nothing from it;
#   - the snapshot after the rollbacks is incremental, and a rollback to
#     it takes its pages read ahead again;
#   - after `rm` of a snapshot of its chain it starts again, and serves
#     the rollback as before;
#   - `status` does not stop it; FP_ROLLBACK_AHEAD=0: nothing is read.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/ra.st
FORKPOINT_FAULT=rollback-ahead-pass grow_session ra --mib=16 --write-pages=200
D=$FORKPOINT_HOME/sessions/ra
H=$D/rollback-ahead-pass

ahead_bytes() { helper_field "$D/control.sock" status ahead_bytes; } # what it read so far
P=$((200 * 4096)) # the heap pages a verification writes
rollback() { # SESSION SNAP N AHEAD FILES: in place, the next verification is N,
	# SNAP's pages read ahead >= P bytes or none (AHEAD: yes/no), those
	# read at the request (memory the tracking does not cover, pages written
	# after the last pass) >= P bytes or fewer (FILES: more/less)
	"$FP" restore "$1" "$2" --json >"$WORK/r.json" || fail "restore $2: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "$2 not in place: $(cat "$WORK/r.json")"
	local a f
	a=$(json_field "$WORK/r.json" ahead_bytes)
	f=$(json_field "$WORK/r.json" files_bytes)
	case $4 in
	yes) ((a >= P)) || fail "restore $2: $a bytes read ahead, want $P at least: $(cat "$WORK/r.json")" ;;
	no) ((a == 0)) || fail "restore $2: $a bytes read ahead, want none: $(cat "$WORK/r.json")" ;;
	esac
	case $5 in
	more) ((f >= P)) || fail "restore $2: $f bytes read at the request, want $P at least: $(cat "$WORK/r.json")" ;;
	less) ((f < P)) || fail "restore $2: $f bytes read at the request, want fewer than $P: $(cat "$WORK/r.json")" ;;
	esac
	grow_verify "$3"
	echo "restore $2: $a bytes read ahead, $f at the request ($(json_field "$WORK/r.json" pages_from))"
}

grow_verify 1
snap_json ra s1 "$WORK/s1.json" # full
ahead_hold                            # s1's read ahead, at its start
grow_verify 2
snap_json ra s2 "$WORK/s2.json"
ahead_go_on # s1's ends (replaced): s2's held at its start
grow_verify 3
(($(ahead_bytes) == 0)) || fail "$(ahead_bytes) bytes read ahead before its first pass"
ahead_go_on # its first pass: the pages verification 3 wrote
n=$(ahead_bytes)
((n >= 200 * 4096)) || fail "$n bytes read ahead after a pass over 200 written pages"
(($(ahead_bytes) == n)) || fail "status changed what was read ahead" # and did not stop it
rollback ra s2 3 yes less # (its verification 3 writes them again)

ahead_go_on # the one before ends: s2's again, held at its start
ahead_go_on # a pass: verification 3's pages
grow_verify 4 # 200 pages more, written after it: read at the request
rollback ra s2 3 yes more

ahead_go_on
ahead_go_on
rollback ra s1 2 no more # not the tracking's snapshot (s2): nothing of it read ahead

ahead_go_on # after the rollback to s1, the tracking's snapshot is s1
grow_verify 3
snap_json ra s3 "$WORK/s3.json"
[[ $(json_field "$WORK/s3.json" full) == False ]] || fail "s3 after the rollbacks is full: $(cat "$WORK/s3.json")"
ahead_go_on # s1's ends, s3's held at its start
grow_verify 4
ahead_go_on
rollback ra s3 4 yes less # (verification 4 writes them again)
ahead_go_on # the one before ends: s3's held at its start
ahead_go_on # a pass
# rm of s3's parent: `forget` stops the read ahead, which starts again
# after it (s3's chain now goes through the parent's hidden directory)
"$FP" rm ra s1 || fail "rm s1"
ahead_go_on # the one before ends: the new one held at its start
ahead_go_on # its pass
rollback ra s3 4 yes less
touch "$H.go"
"$FP" stop --kill ra >/dev/null 2>&1

st=$WORK/off.st
FP_ROLLBACK_AHEAD=0 grow_session off --mib=16 --write-pages=200
D=$FORKPOINT_HOME/sessions/off
grow_verify 1
snap_json off o1 "$WORK/o1.json"
grow_verify 2
(($(ahead_bytes) == 0)) || fail "$(ahead_bytes) bytes read ahead though FP_ROLLBACK_AHEAD=0"
rollback off o1 2 no more
"$FP" stop --kill off >/dev/null 2>&1
echo ok
