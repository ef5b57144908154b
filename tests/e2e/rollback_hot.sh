# A rollback in place to a hot snapshot (`snap --hot`) takes SNAP's pages
# from the frozen copies the helper holds (helper/session/rollback_hot.c),
# not from the page stores ("pages_from": "hot"); to a cold snapshot, or
# to one whose copies were released (--hot-limit), from the stores
# ("files"). The self-checking target verifies every page each time, and
# rolling back to the hot snapshot again after more steps proves the copy
# did not change. A rollback from a hot snapshot that fails half way
# (FORKPOINT_FAULT) leaves the state from before.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
source "$(dirname "$0")/explore_common.inc"
st=$WORK/status

rollback() { # SESSION SNAP STEP FROM: in place, SNAP's pages from FROM (a prefix), the target at STEP
	"$FP" restore "$1" "$2" --json >"$WORK/r.json" || fail "restore $2: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "$2 not in place: $(cat "$WORK/r.json")"
	local from hot
	from=$(json_field "$WORK/r.json" pages_from)
	hot=$(json_field "$WORK/r.json" hot_bytes)
	[[ $from == "$4"* ]] || fail "restore $2: pages from '$from', want '$4': $(cat "$WORK/r.json")"
	if [[ $4 == hot ]]; then
		((hot > 0)) || fail "restore $2: no byte from the frozen copy: $(cat "$WORK/r.json")"
	else
		((hot == 0)) || fail "restore $2: $hot bytes from a frozen copy of a cold snapshot"
	fi
	at "$3"
	echo "restore $2: step $3, pages from $from ($hot bytes from the copy)"
}

explore_session rh 16
"$FP" snap rh s0 >/dev/null || fail "snap s0"
step 1
"$FP" snap rh s1 --hot >/dev/null || fail "snap s1 --hot"
step 3 # areas made, protected and removed; pages written
at 4
rollback rh s1 1 hot
step 2
rollback rh s0 0 files
step 2
rollback rh s1 1 hot # the copy is still s1's, after being read and the session moving on
step 1
# s2 hot with a limit of one: s1's copies are released, it is cold now
"$FP" snap rh s2 --hot --hot-limit 1 >/dev/null || fail "snap s2 --hot"
grep -q '^s1 ' "$FORKPOINT_HOME/sessions/rh/hot" && fail "s1 still hot: $(cat "$FORKPOINT_HOME/sessions/rh/hot")"
step 2
rollback rh s1 1 files
rollback rh s2 2 hot
"$FP" stop rh

# a rollback from a hot snapshot failing half way: the state from before
st=$WORK/status2
FORKPOINT_FAULT=rollback-after-40-pages explore_session rhf 16
step 1
"$FP" snap rhf h1 --hot >/dev/null || fail "snap h1 --hot"
step 4
at 5
err=$("$FP" restore rhf h1 --json 2>&1) && fail "a rollback failing on purpose succeeded: $err"
[[ $err == *"failing on purpose"* && $err == *"back in its state from before"* ]] || fail "message: $err"
[[ $(session_field rhf target_pid) == "$pid" ]] || fail "the failed rollback changed the pid"
at 5
step 1
rollback rhf h1 1 hot
"$FP" stop rhf
echo ok
