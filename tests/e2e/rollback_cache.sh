# The session helper keeps each snapshot's pages resolved through its
# chain (helper/session/rollback_cache.c): a rollback to a snapshot it
# took reads no pagemap of the chain ("pagemap_from": "kept"). Checked
# against the self-checking target every time: rollbacks served from what
# was kept, then from the files once rm of a middle snapshot changed the
# chain (what was kept of it is not used: its directory moved), then kept
# again; rm of a snapshot drops what the helper kept of it, and a new
# snapshot under the same name is never mistaken for the removed one.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
st=$WORK/status

explore_session rc 16
sock=$FORKPOINT_HOME/sessions/rc/control.sock

kept() { helper_field "$sock" "forget none" kept; } # (snapshot, process) resolutions the helper keeps
rollback() { # SNAP STEP FROM: in place, SNAP's page map from FROM, the target at STEP
	"$FP" restore rc "$1" --json >"$WORK/r.json" || fail "restore $1: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "$1 not in place: $(cat "$WORK/r.json")"
	local from
	from=$(json_field "$WORK/r.json" pagemap_from)
	[[ $from == "$3" ]] || fail "restore $1: page map from '$from', want '$3': $(cat "$WORK/r.json")"
	at "$2"
	echo "restore $1: step $2, page map $from"
}

"$FP" snap rc s0 >/dev/null || fail "snap s0"
step 1
"$FP" snap rc s1 >/dev/null || fail "snap s1"
step 1
"$FP" snap rc s2 >/dev/null || fail "snap s2"
step 2
(( $(kept) >= 3 )) || fail "the helper keeps $(kept) resolutions after three snapshots"

# each snapshot was resolved right after it was taken
rollback s2 2 kept
step 1
rollback s2 2 kept
rollback s1 1 kept
step 2

# rm of s1, s2's parent: s1 is kept hidden and s2's parent link re-pointed;
# what was kept of s1 and s2 names the old directory and is not used
"$FP" rm rc s1 || fail "rm s1"
rollback s2 2 files
step 1
rollback s2 2 kept

# rm of a snapshot drops what was kept of it
n=$(kept)
"$FP" rm rc s2 || fail "rm s2"
m=$(kept)
(( m < n )) || fail "rm s2: the helper keeps $m resolutions, $n before"
# a new s2 is another snapshot: restored as itself
step 3
"$FP" snap rc s2 >/dev/null || fail "snap s2 again"
step 1
rollback s2 5 kept
rollback s0 0 kept
"$FP" stop rc
echo ok
