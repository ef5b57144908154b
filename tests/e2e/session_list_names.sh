# `forkpoint list` without a session lists every session with its
# snapshots; session and snapshot names that could escape the session
# directory or inject mount options are refused before anything is made.
source "$(dirname "$0")/../lib.sh"

"$FP" list | grep -q '^SESSION' || fail "list of no sessions has no header"
"$FP" run --detach --name alive -- sleep 1000 >/dev/null || fail "run alive"
track_pid "$(session_field alive helper_pid)"
"$FP" snap alive a1 >/dev/null || fail "snap a1"
"$FP" snap alive a2 >/dev/null || fail "snap a2"
"$FP" run --detach --name ended -- sleep 1000 >/dev/null || fail "run ended"
track_pid "$(session_field ended helper_pid)"
"$FP" snap ended e1 >/dev/null || fail "snap e1"
"$FP" stop ended || fail "stop ended"

out=$("$FP" list) || fail "list: $out"
grep -Eq '^alive +running .* a1, a2$' <<<"$out" || fail "list misses the running session: $out"
grep -Eq '^ended +exited .* e1$' <<<"$out" || fail "list misses the ended session: $out"
"$FP" list --json | python3 -c '
import json, sys
d = {s["name"]: s for s in json.load(sys.stdin)}
assert [x["name"] for x in d["alive"]["snapshots"]] == ["a1", "a2"], d
assert d["ended"]["state"] == "exited" and [x["name"] for x in d["ended"]["snapshots"]] == ["e1"], d
' || fail "list --json"

for bad in 'a/b' '..' '../x' '-x' '.hidden' 'a,b' 'x=y' 'lowerdir=/' 'a b' "$(printf 'a\nb')" ''; do
	err=$("$FP" run --detach --name "$bad" -- sleep 1 2>&1) && fail "session name '$bad' accepted"
	[[ $err == *"session name"* ]] || fail "session name '$bad': $err"
	err=$("$FP" snap alive "$bad" 2>&1) && fail "snapshot name '$bad' accepted"
	err=$("$FP" exec "$bad" -- true 2>&1) && fail "exec on session '$bad' accepted"
done
[[ $(ls "$FORKPOINT_HOME/sessions" | sort | tr '\n' ' ') == "alive ended " ]] ||
	fail "bad names left something: $(ls -a "$FORKPOINT_HOME/sessions")"
[[ $(ls "$FORKPOINT_HOME/sessions/alive/snapshots" | tr '\n' ' ') == "a1 a2 " ]] ||
	fail "bad snapshot names left something: $(ls -a "$FORKPOINT_HOME/sessions/alive/snapshots")"
# A detached program that ends at once keeps its (empty) log, and its name
# can be taken again.
"$FP" run --detach --name quick -- true >/dev/null || fail "run quick"
wait_for 20 grep -q '^state=exited' "$FORKPOINT_HOME/sessions/quick/session.meta" || fail "quick did not end"
qh=$(awk -F= '/^helper_pid=/{print $2}' "$FORKPOINT_HOME/sessions/quick/session.meta")
wait_for 20 test ! -e "/proc/$qh" || fail "the helper of quick did not exit"
[[ -e $FORKPOINT_HOME/sessions/quick/output.log ]] || fail "the log of an ended detached session was deleted"
"$FP" list | grep -Eq '^quick +exited' || fail "list misses the ended session quick"
"$FP" run --detach --name quick -- sleep 1000 >/dev/null || fail "the name of an ended session is still taken"
track_pid "$(session_field quick helper_pid)"
"$FP" stop quick
"$FP" stop alive
echo ok
