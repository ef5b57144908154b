# A restore whose pids are taken (the dumped process still runs) goes into a
# new pid namespace where the process keeps its pid and tids and sees its own
# /proc; --exact-pids refuses instead. Without -d, forkpoint waits and exits
# with the restored process's status.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid namespaces, clone3 set_tid)"; exit 77; }

st=$WORK/threads.status
setsid "$T/ct_threads" "$st" --same-pid --quiet-stdio </dev/null >/dev/null 2>&1 &
wait_for 20 grep -qs '^ready' "$st" || fail "target not ready"
pid=$(awk '/^ready/{print $2}' "$st")
track_pid "$pid"
"$FP" dump -R -t "$pid" -D "$WORK/d" >/dev/null || fail "dump"
kill -0 "$pid" || fail "the dumped process should still run"

err=$("$FP" restore -D "$WORK/d" --exact-pids -d 2>&1) && fail "--exact-pids restored over a pid in use"
[[ $err == *"pid $pid is in use"* ]] || fail "--exact-pids message: $err"

out=$("$FP" restore -D "$WORK/d" -d 2>"$WORK/err") || fail "restore into a new pid namespace: $(cat "$WORK/err")"
outer=$out
track_pid "$outer"
[[ $outer != "$pid" ]] || fail "restored with the taken pid $pid outside a namespace"
grep -q "new pid namespace, where it is pid $pid" "$WORK/err" || fail "no namespace note: $(cat "$WORK/err")"
grep -q "^NSpid:[[:space:]]*$outer[[:space:]]*$pid\$" "/proc/$outer/status" ||
	fail "NSpid of $outer: $(grep NSpid "/proc/$outer/status")"
# --same-pid: the process checks that its pid and every tid are as dumped.
v=$(ct_verify "$st" "$outer") || fail "verify in the namespace: $v"
[[ $v == "verify 1 ok pid=$pid "* ]] || fail "verify in the namespace: $v"
kill -9 "$outer"

# Not detached: forkpoint's exit status is the restored process's.
"$FP" restore -D "$WORK/d" 2>"$WORK/err2" &
fpid=$!
wait_for 20 grep -q "outside" "$WORK/err2" || fail "no namespace note from the waiting restore"
outer2=$(sed -n 's/.*(\([0-9]*\) outside.*/\1/p' "$WORK/err2")
track_pid "$outer2"
before=$(grep -c '^verify ' "$st")
kill -TERM "$outer2"   # ct targets verify once more and exit 0 if all is well
wait "$fpid"; rc=$?
[[ $rc == 0 ]] || fail "forkpoint restore exited $rc, the process should have exited 0"
(( $(grep -c '^verify ' "$st") > before )) || fail "the restored process did not verify on SIGTERM"
grep '^verify ' "$st" | tail -n 1 | grep -q "^verify 1 ok pid=$pid " || fail "last verify: $(tail -n 1 "$st")"
kill -0 "$pid" || fail "the original process was harmed"
echo ok
