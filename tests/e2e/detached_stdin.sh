# A detached session's stdin is the named pipe sessions/NAME/stdin, held open
# by the helper: `run --detach -- bash` waits for commands instead of reading
# end-of-file and exiting; what is written into the pipe reaches it, also
# after a snapshot and a restore; its output.log is kept after it ends.
source "$(dirname "$0")/../lib.sh"
command -v bash >/dev/null || { echo "no bash"; exit 77; }
s=$FORKPOINT_HOME/sessions/b
log=$s/output.log

"$FP" run --detach --name b -- bash >/dev/null || fail "run --detach -- bash"
track_pid "$(session_field b helper_pid)"
[[ -p $s/stdin ]] || fail "no named pipe $s/stdin"
pid=$(session_field b target_pid)
[[ $(readlink "/proc/$pid/fd/0") == "$s/stdin" ]] || fail "bash's stdin is $(readlink "/proc/$pid/fd/0")"
echo 'echo "one $((6 * 7))"; X=before' >"$s/stdin"
wait_for 20 grep -q '^one 42$' "$log" || fail "the first command did not run: $(cat "$log")"
# It read one command and waits for the next (a writer came and went: no EOF).
[[ $(session_field b state) == running && -e /proc/$pid ]] || fail "bash exited after its input's writer closed"

"$FP" snap b s1 >/dev/null || fail "snap"
echo 'X=after; echo "x is $X"' >"$s/stdin"
wait_for 20 grep -q '^x is after$' "$log" || fail "second command: $(cat "$log")"
"$FP" restore b s1 >/dev/null || fail "restore"
echo 'echo "restored x is $X"' >"$s/stdin"
wait_for 20 grep -q '^restored x is before$' "$log" || fail "after restore: $(cat "$log")"

# A program that reads stdin to its end ends when told: `exit` here.
echo 'exit 4' >"$s/stdin"
wait_for 20 grep -q '^state=exited' "$s/session.meta" || fail "bash did not exit"
grep -q '^exit_status=1024$' "$s/session.meta" || fail "exit status: $(grep exit_status "$s/session.meta")"
[[ $(cat "$log") == $'one 42\nx is after\nrestored x is before' ]] || fail "log: $(cat "$log")"

# Plain filters too: cat copies what comes, for as long as the session lives.
"$FP" run --detach --name c -- cat >/dev/null || fail "run --detach -- cat"
track_pid "$(session_field c helper_pid)"
printf 'a\n' >"$FORKPOINT_HOME/sessions/c/stdin"
printf 'b\n' >"$FORKPOINT_HOME/sessions/c/stdin"
wait_for 20 bash -c "[[ \$(cat '$FORKPOINT_HOME/sessions/c/output.log') == \$'a\\nb' ]]" || fail "cat: $(cat "$FORKPOINT_HOME/sessions/c/output.log")"
"$FP" stop c || fail "stop c"
[[ -e $FORKPOINT_HOME/sessions/c/output.log ]] || fail "the log of a stopped session was deleted"
echo ok
