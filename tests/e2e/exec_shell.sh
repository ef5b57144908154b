# forkpoint exec in a shell session (run --shell): checkpoint-lite's README
# example, exit codes, large binary output, timeouts, interrupts, stdin,
# queued execs and a background job across snapshot and restore.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (--workdir mounts an overlay)"; exit 77; }
command -v bash >/dev/null || { echo "no bash"; exit 77; }

app=$WORK/app
mkdir -p "$app"
cat >"$app/run.sh" <<'EOF'
mkdir -p results
echo "result of $ENV_VAR" > results/out.txt
EOF

name=$("$FP" run --shell --workdir "$app" --name cl) || fail "run --shell: $name"
[[ $name == cl ]] || fail "run --shell printed '$name'"
track_pid "$(session_field cl helper_pid)"

x() { "$FP" exec cl "$@"; }

# --- checkpoint-lite's README example --------------------------------------
out=$(x -c 'cd '"$app"' && export ENV_VAR=start && pwd') || fail "cd: $out"
[[ $out == "$app" ]] || fail "pwd printed '$out'"
"$FP" snap cl before-run >/dev/null || fail "snap before-run"
out=$(x -c 'bash run.sh') || fail "run.sh: $out"
x -c 'export ENV_VAR=finished' || fail "export"
x -c 'cd results' || fail "cd results"
[[ $(x -c 'echo $ENV_VAR $(pwd)') == "finished $app/results" ]] || fail "state before after-run"
"$FP" snap cl after-run >/dev/null || fail "snap after-run"
"$FP" restore cl before-run >/dev/null || fail "restore before-run"
out=$(x -c 'echo $ENV_VAR $(pwd)') || fail "exec after restore: $out"
[[ $out == "start $app" ]] || fail "after restore of before-run: '$out', want 'start $app'"
x -c 'test ! -e results' || fail "results/ still there after restoring before-run"
"$FP" restore cl after-run >/dev/null || fail "restore after-run"
[[ $(x -c 'echo $ENV_VAR $(pwd)') == "finished $app/results" ]] || fail "after restore of after-run"
[[ $(x -c 'cat out.txt') == "result of start" ]] || fail "results/out.txt not back: $(x -c 'ls -la')"
[[ ! -e $app/results ]] || fail "the workdir itself was written"

# --- exit codes -------------------------------------------------------------
x -c 'true'; [[ $? == 0 ]] || fail "true"
x -c 'false'; [[ $? == 1 ]] || fail "false"
x -c 'no-such-command-xyz' 2>/dev/null; [[ $? == 127 ]] || fail "command not found"
[[ $(x -c 'echo $?') == 127 ]] || fail "\$? is not carried to the next exec"
x -- sh -c 'kill -TERM $$' 2>/dev/null; [[ $? == 143 ]] || fail "death by SIGTERM"
x -- sh -c 'kill -KILL $$' 2>/dev/null; [[ $? == 137 ]] || fail "death by SIGKILL"
x -c 'exit_in_subshell() { (exit 42); }; exit_in_subshell'; [[ $? == 42 ]] || fail "status 42"

# stdout and stderr apart, arguments quoted as given.
out=$(x -c 'echo out; echo err >&2' 2>"$WORK/err") || fail "out/err"
[[ $out == out && $(cat "$WORK/err") == err ]] || fail "stdout '$out', stderr '$(cat "$WORK/err")'"
[[ $(x -- printf '%s|' 'a b' "it's" '$HOME') == "a b|it's|\$HOME|" ]] || fail "argv quoting"

# State: functions, aliases, unexported variables, umask; multi-line input
# and here-documents.
x -c 'greet() { echo "hi $1"; }
alias say=echo
secret=42
umask 027' || fail "define state"
[[ $(x -c 'greet you; say $secret; umask') == $'hi you\n42\n0027' ]] || fail "state lost between execs"
[[ $(x -c 'cat <<EOF
line $secret
EOF') == "line 42" ]] || fail "here-document"

# --json
out=$(x --json -c 'printf "a\tb\n"; echo e >&2; (exit 3)')
[[ $? == 3 ]] || fail "--json exit status"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["exit_code"]==3 and d["stdout"]=="a\tb\n" and d["stderr"]=="e\n" and d["duration_ms"]>=0, d' "$out" ||
	fail "--json: $out"

# stdin: EOF by default, the caller's with --stdin.
[[ $(echo hello | x -- cat) == "" ]] || fail "stdin without --stdin is not EOF"
[[ $(echo hello | x --stdin -- cat) == hello ]] || fail "--stdin"

# --- 200 MB of binary output, byte for byte ---------------------------------
head -c 200000000 /dev/urandom >"$WORK/big" || fail "making 200 MB"
want=$(sha256sum <"$WORK/big")
got=$(x -- cat "$WORK/big" | sha256sum)
[[ $got == "$want" ]] || fail "200 MB output differs: $got vs $want"
rm -f "$WORK/big"

# --- timeout, interrupt, disconnect: the command ends, the shell stays -------
x --timeout 1 -c 'while :; do sleep 1; done' 2>/dev/null; [[ $? == 124 ]] || fail "--timeout exit status"
[[ $(x -c 'echo alive') == alive ]] || fail "exec after a timeout"
x --timeout 1 -c 'while :; do :; done' 2>/dev/null; [[ $? == 124 ]] || fail "--timeout of a builtin loop"
[[ $(x -c 'echo alive') == alive ]] || fail "exec after a builtin loop's timeout"
x --timeout 1 -- sh -c 'trap "" INT; sleep 600' 2>/dev/null; [[ $? == 124 ]] || fail "--timeout of a command ignoring SIGINT"

"$FP" exec cl -c "touch $WORK/started; sleep 600" & client=$!
wait_for 20 test -e "$WORK/started" || fail "command did not start"
kill -INT $client
wait $client; rc=$?
[[ $rc == 130 ]] || fail "Ctrl-C: exit $rc, want 130"
[[ $(x -c 'echo alive') == alive ]] || fail "exec after Ctrl-C"

rm -f "$WORK/started"
"$FP" exec cl -c "touch $WORK/started; sleep 600" & client=$!
wait_for 20 test -e "$WORK/started" || fail "command did not start"
kill -9 $client
wait $client 2>/dev/null
[[ $(x --timeout 30 -c 'echo alive') == alive ]] || fail "exec after the caller was killed"

# Two execs at once run one after the other, never interleaved.
x -c "echo a1 >>$WORK/order; sleep 0.3; echo a2 >>$WORK/order" & c1=$!
x -c "echo b1 >>$WORK/order; sleep 0.3; echo b2 >>$WORK/order" & c2=$!
wait $c1 || fail "concurrent exec 1"
wait $c2 || fail "concurrent exec 2"
order=$(tr '\n' ' ' <"$WORK/order")
[[ $order == "a1 a2 b1 b2 " || $order == "b1 b2 a1 a2 " ]] || fail "concurrent execs interleaved: $order"

# --- a background job survives snapshot and restore --------------------------
x -c 'sleep 300 &' || fail "start a job"
jpid=$(x -c 'jobs -p')
[[ $jpid =~ ^[0-9]+$ ]] || fail "jobs -p: $jpid"
"$FP" snap cl with-job >/dev/null || fail "snap with a job"
x -c 'kill %1; wait' 2>/dev/null
[[ $(x -c 'jobs') == "" ]] || fail "job still listed after kill"
"$FP" restore cl with-job >/dev/null || fail "restore with a job"
[[ $(x -c 'jobs') == *"Running"*"sleep 300"* ]] || fail "jobs after restore: $(x -c jobs)"
[[ -e /proc/$jpid ]] || fail "the job's process $jpid is not back"
[[ $(x -c 'echo $secret; greet me') == $'42\nhi me' ]] || fail "state after restore"

# A restore while a command runs answers that exec at once; the next works.
rm -f "$WORK/started"
"$FP" exec cl -c "touch $WORK/started; sleep 600" 2>"$WORK/restored.err" & client=$!
wait_for 20 test -e "$WORK/started" || fail "command did not start"
"$FP" restore cl with-job >/dev/null || fail "restore during an exec"
wait $client && fail "the exec interrupted by a restore succeeded"
grep -q "restored to a snapshot while this command ran" "$WORK/restored.err" || fail "message: $(cat "$WORK/restored.err")"
[[ $(x -c 'echo $secret') == 42 ]] || fail "exec after a restore during an exec"

# `exit` ends the shell, and with it the session.
x -c 'exit 3' 2>/dev/null; [[ $? == 3 ]] || fail "exit 3 in the shell"
helper=$(awk -F= '/^helper_pid=/{print $2}' "$FORKPOINT_HOME/sessions/cl/session.meta")
wait_for 20 test ! -e "/proc/$helper" || fail "the session outlived its shell"
echo ok
