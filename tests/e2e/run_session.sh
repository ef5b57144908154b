# forkpoint run / ps / stop: exit statuses, signals, bad input, detached sessions.
source "$(dirname "$0")/../lib.sh"

# Exit status and stdio pass through.
out=$("$FP" run -- sh -c 'echo "out:$FORKPOINT_SESSION"; exit 7') ; rc=$?
[[ $rc == 7 ]] || fail "exit status 7 expected, got $rc"
[[ $out == out:sh-* ]] || fail "stdout not passed through: '$out'"

# The target runs with the shim preloaded.
out=$("$FP" run -- sh -c 'cat /proc/$$/maps') || fail "run failed"
grep -q libforkpoint-preload.so <<<"$out" || fail "shim not mapped in the target"

# Death by signal becomes forkpoint's.
"$FP" run -- sh -c 'kill -USR1 $$'; rc=$?
[[ $rc == $((128 + 10)) ]] || fail "expected death by SIGUSR1 (138), got $rc"

# Bad input: clear message and non-zero exit, never a crash.
err=$("$FP" run -- /no/such/program 2>&1); rc=$?
[[ $rc == 127 ]] || fail "missing program: rc $rc"
grep -q "/no/such/program" <<<"$err" || fail "missing program not named: $err"
err=$("$FP" run -- no-such-command-xyz 2>&1); rc=$?
[[ $rc == 127 && $err == *"command not found"* ]] || fail "not-found command: rc $rc: $err"
err=$("$FP" run 2>&1); rc=$?
[[ $rc == 2 && $err == *"no command"* ]] || fail "no command: rc $rc: $err"
err=$("$FP" run -- /etc/passwd 2>&1); rc=$?
[[ $rc == 126 ]] || fail "non-executable: rc $rc: $err"
err=$("$FP" run --name 'bad/name' -- true 2>&1); rc=$?
[[ $rc == 2 ]] || fail "bad session name: rc $rc: $err"

# A static binary runs without the shim, and says so.
exec 3< <(echo) # stdin that closes at once
err=$("$FP" run -- "$T/static_sleeper" 2>&1 <&3); rc=$?
[[ $rc == 0 ]] || fail "static binary: rc $rc: $err"
grep -q "statically linked" <<<"$err" || fail "no static-binary notice: $err"

# Detached sessions: listed by ps while alive, owner-only, gone after stop.
name=$("$FP" run --detach --name e2e-detached -- sleep 1000) || fail "detach failed"
[[ $name == e2e-detached ]] || fail "detach printed '$name'"
"$FP" ps | grep -q '^e2e-detached ' || fail "ps does not list the session"
"$FP" ps --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any(s["name"]=="e2e-detached" and s["target_pid"]>0 for s in d)' \
	|| fail "ps --json"
perm=$(stat -c %a "$FORKPOINT_HOME/sessions/e2e-detached")
[[ $perm == 700 ]] || fail "session dir mode $perm, want 700"
tpid=$("$FP" ps --json | python3 -c 'import json,sys; print([s["target_pid"] for s in json.load(sys.stdin) if s["name"]=="e2e-detached"][0])')
track_pid "$tpid"
[[ $(cat /proc/$tpid/comm) == sleep ]] || fail "target pid $tpid is not sleep"
ppid=$(awk '{print $4}' /proc/$tpid/stat)
hpid=$("$FP" ps --json | python3 -c 'import json,sys; print([s["helper_pid"] for s in json.load(sys.stdin) if s["name"]=="e2e-detached"][0])')
[[ $ppid == "$hpid" ]] || fail "helper $hpid is not the target's parent ($ppid)"
err=$("$FP" run --detach --name e2e-detached -- true 2>&1); rc=$?
[[ $rc != 0 && $err == *"already exists"* ]] || fail "duplicate name accepted: $err"
"$FP" stop e2e-detached || fail "stop failed"
wait_for 10 bash -c "! kill -0 $hpid 2>/dev/null" || fail "helper did not exit after stop"
"$FP" ps | grep -q '^e2e-detached ' && fail "stopped session still listed"
err=$("$FP" stop e2e-detached 2>&1); rc=$?
[[ $rc != 0 ]] || fail "stop of a gone session succeeded"
echo ok
