# forkpoint inspect: threads with stacks, maps, fds, sizes, the shim's table
# against /proc, and clear errors for what cannot be inspected.
source "$(dirname "$0")/../lib.sh"

"$FP" run --detach --name insp -- "$BUILD/examples/counter" "$WORK/counter.log" >/dev/null || fail "run"
hpid=$("$FP" ps --json | python3 -c 'import json,sys; print([s["helper_pid"] for s in json.load(sys.stdin) if s["name"]=="insp"][0])')
track_pid "$hpid"
wait_for 10 test -s "$WORK/counter.log" || fail "counter never ticked"

out=$("$FP" inspect insp) || fail "inspect failed: $out"
grep -q "table agrees with /proc" <<<"$out" || fail "shim table disagrees: $out"
grep -q "main+0x" <<<"$out" || fail "no main frame in the stacks: $out"
grep -q "worker+0x" <<<"$out" || fail "no worker frame in the stacks: $out"
grep -q "counter.log" <<<"$out" || fail "fd on the log not shown"

"$FP" inspect insp --json >"$WORK/insp.json" || fail "inspect --json"
python3 - "$WORK/insp.json" <<'PY' || fail "inspect --json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["shim"]["present"], "shim not present"
assert d["shim"]["disagreements"] == [], d["shim"]["disagreements"]
assert len(d["threads"]) == 2, d["threads"]
syms = [f["symbol"] for t in d["threads"] for f in t["stack"]]
assert "main" in syms and "worker" in syms, syms
assert any(m["kind"] == "heap" for m in d["mappings"]), "no heap mapping"
assert d["memory_kb"]["rss_anon"] >= 16 * 1024, d["memory_kb"]
paths = [f["path"] for f in d["shim"]["fds"]]
assert any(p.endswith("counter.log") for p in paths), paths
PY
# Inspecting must not harm the target: it keeps ticking and checking itself.
n=$(wc -l <"$WORK/counter.log")
wait_for 10 bash -c "(( \$(wc -l <'$WORK/counter.log') > $n + 1 ))" || fail "counter stopped after inspect"
grep -q BROKEN "$FORKPOINT_HOME/sessions/insp/output.log" && fail "counter found its state broken"

# A process already traced by someone else: no stacks, and the tracer is named.
sleep 1000 &
spid=$!; track_pid $spid
strace -p $spid -o /dev/null 2>/dev/null &
stpid=$!; track_pid $stpid
wait_for 10 bash -c "grep -q '^TracerPid:[[:space:]]*$stpid' /proc/$spid/status" || fail "strace did not attach"
out=$("$FP" inspect $spid 2>&1) || fail "inspect of a traced process failed: $out"
grep -q "already traced by $stpid" <<<"$out" || fail "tracer not named: $out"
kill $stpid; kill $spid

# A process not under the shim.
out=$("$FP" inspect $$) || fail "inspect of the test shell"
grep -q "not under the shim" <<<"$out" || fail "shim absence not reported"

# Static binary: said so.
"$FP" run --detach --name stat -- "$T/static_sleeper" pause >/dev/null 2>&1 || fail "run static"
tpid=$("$FP" ps --json | python3 -c 'import json,sys; print([s["target_pid"] for s in json.load(sys.stdin) if s["name"]=="stat"][0])')
track_pid "$tpid"
out=$("$FP" inspect stat) || fail "inspect static"
grep -q "statically linked" <<<"$out" || fail "static binary not reported: $out"
"$FP" stop stat

# Bad input.
"$FP" inspect 2 >/dev/null 2>"$WORK/e"; rc=$?
[[ $rc != 0 ]] && grep -q "kernel thread" "$WORK/e" || fail "kernel thread: rc $rc $(cat "$WORK/e")"
"$FP" inspect 999999999 >/dev/null 2>"$WORK/e"; rc=$?
[[ $rc != 0 ]] || fail "bad pid accepted"
"$FP" inspect no-such-session >/dev/null 2>"$WORK/e"; rc=$?
[[ $rc == 3 ]] && grep -q "no session" "$WORK/e" || fail "missing session: rc $rc"
"$FP" inspect >/dev/null 2>&1; [[ $? == 2 ]] || fail "no argument"
"$FP" stop insp
echo ok
