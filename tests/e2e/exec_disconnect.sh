# An exec whose caller is killed (SIGKILL) while the command runs: the
# command is interrupted, the shell survives, and the next exec answers at
# once with its own output and status. Rounds cycle through commands that
# end differently: a shell's builtin loop that keeps writing (its writes
# into the dead caller's pipe once killed the shell by SIGPIPE), an external
# command of sh (which may miss the SIGINT: its sleep is then killed, and
# bash's "Killed" notice went to the dead pipe), a sleep of the shell's own
# and a builtin loop. Then a command that eats the typed status line (the
# shell must still report, not hang until the timeout).
source "$(dirname "$0")/../lib.sh"
command -v bash >/dev/null || { echo "no bash"; exit 77; }
ROUNDS=${EXEC_DISCONNECT_ROUNDS:-20}

"$FP" run --shell --name dc >/dev/null || fail "run --shell"
track_pid "$(session_field dc helper_pid)"
shell=$(session_field dc target_pid)

for ((i = 0; i < ROUNDS; i++)); do
	rm -f "$WORK/err"
	case $((i % 4)) in
	0) cmd='echo start >&2; while :; do echo x; done' ;;
	1) cmd="sh -c 'echo start >&2; sleep 30'" ;;
	2) cmd='echo start >&2; sleep 30' ;;
	3) cmd='echo start >&2; while :; do :; done' ;;
	esac
	"$FP" exec dc -c "$cmd" >/dev/null 2>"$WORK/err" & client=$!
	wait_for 20 grep -q start "$WORK/err" || fail "round $i: the command did not start: $(cat "$WORK/err")"
	kill -9 $client
	wait $client 2>/dev/null
	out=$("$FP" exec dc --timeout 30 -- echo "ok $i" 2>&1); rc=$?
	[[ $rc == 0 && $out == "ok $i" ]] || fail "round $i ($cmd): the next exec gave exit $rc, '$out'"
	[[ -e /proc/$shell ]] || fail "round $i ($cmd): the session's shell $shell died"
done

# The status line typed after a command is eaten by the command itself:
# the shell, idle at its prompt, must still report (exit 0, not 124).
out=$("$FP" exec dc --timeout 30 -c 'read -r line </dev/tty; echo "ate ${#line}"'); rc=$?
[[ $rc == 0 && $out == "ate "* ]] || fail "a command that read the status line: exit $rc, '$out'"
[[ $("$FP" exec dc --timeout 30 -- echo alive) == alive ]] || fail "exec after the status line was eaten"
echo ok
