# forkpoint exec on a session without --shell: the command is a new process
# in the session's workspace view (it sees the session's files, DIR itself
# is not written), with its own exit status and separate stdout/stderr.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (--workdir mounts an overlay)"; exit 77; }
dir=$WORK/dir
mkdir -p "$dir"
echo base >"$dir/base.txt"
"$FP" run --detach --workdir "$dir" --name p -- sh -c "echo made >'$dir/created.txt'; exec sleep 1000" >/dev/null || fail "run"
track_pid "$(session_field p helper_pid)"
wait_for 20 "$FP" exec p -- test -e created.txt || fail "the target's file is not visible to exec"
[[ ! -e $dir/created.txt ]] || fail "the workdir itself was written"
[[ $("$FP" exec p -- cat created.txt base.txt) == $'made\nbase' ]] || fail "exec does not see the workspace view"
[[ $("$FP" exec p -c 'pwd') == "$dir" ]] || fail "exec's cwd is not the workdir"
out=$("$FP" exec p -c 'echo out; echo err >&2; exit 5' 2>"$WORK/err"); rc=$?
[[ $rc == 5 && $out == out && $(cat "$WORK/err") == err ]] || fail "exit $rc, stdout '$out', stderr '$(cat "$WORK/err")'"
"$FP" exec p -- no-such-program-xyz 2>/dev/null; [[ $? == 127 ]] || fail "a missing program is not 127"
"$FP" exec p -- sh -c 'kill -SEGV $$'; [[ $? == 139 ]] || fail "death by SIGSEGV is not 139"
"$FP" exec p --timeout 1 -- sleep 600; [[ $? == 124 ]] || fail "--timeout"
[[ $(echo piped | "$FP" exec p --stdin -- cat) == piped ]] || fail "--stdin"
"$FP" exec p -- touch by-exec.txt || fail "write through exec"
[[ $("$FP" exec p -- ls) == *by-exec.txt* && ! -e $dir/by-exec.txt ]] || fail "exec's file is not in the view only"
"$FP" stop p
echo ok
