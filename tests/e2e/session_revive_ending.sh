# `forkpoint restore SESSION SNAP` right after the session ended, while its
# helper has saved "exited" and removed its control socket but not yet
# exited: the restore waits for that helper to be gone, then revives the
# session from SNAP (it was sent to the removed socket: "cannot reach the
# session helper").
source "$(dirname "$0")/../lib.sh"

FORKPOINT_FAULT=session-finished "$FP" run --detach --name fin -- sleep 1000 >/dev/null || fail "run"
hpid=$(session_field fin helper_pid)
tpid=$(session_field fin target_pid)
track_pid "$hpid"
"$FP" snap fin s1 >/dev/null || fail "snap"
# The program ends (`stop` would wait for the helper, held below).
kill "$tpid" || fail "kill the program"
dir=$FORKPOINT_HOME/sessions/fin
wait_for 20 test -e "$dir/session-finished.paused" || fail "the helper did not pause after its session ended"
grep -q '^state=exited' "$dir/session.meta" || fail "state not saved as exited: $(cat "$dir/session.meta")"
[[ -d /proc/$hpid ]] || fail "the helper is not held alive"

"$FP" restore fin s1 >"$WORK/out" 2>"$WORK/err" &
rpid=$!
# Until the helper goes, the restore must wait for it (in nanosleep), not fail.
wait_for 20 bash -c "! kill -0 $rpid 2>/dev/null || [[ \$(cat /proc/$rpid/wchan 2>/dev/null) == *nanosleep* ]]" ||
	fail "restore neither waited nor ended"
kill -0 "$rpid" 2>/dev/null || { wait "$rpid"; fail "restore did not wait for the ending helper: $(cat "$WORK/err")"; }
touch "$dir/session-finished.go"
wait "$rpid" || fail "restore after the helper went: $(cat "$WORK/err")"
new=$(session_field fin helper_pid)
track_pid "$new"
[[ $new != "$hpid" ]] || fail "the same helper serves the session"
[[ $(session_field fin state) == running ]] || fail "not running after the restore: $(session_field fin state)"
[[ $(session_field fin target_pid) == "$tpid" ]] || fail "revived with pid $(session_field fin target_pid), not $tpid"
"$FP" stop fin || fail "stop the revived session"
wait_for 20 grep -q '^state=exited' "$dir/session.meta" || fail "the revived session did not end"
echo ok
