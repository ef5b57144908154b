# A session whose program has ended (it exited, was stopped, or its helper
# was killed) comes back from any of its snapshots: a new helper restores
# the processes (same pids), the workspace files of that snapshot, the
# shell on a new terminal with its jobs, a detached program's stdin pipe.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (--workdir mounts an overlay)"; exit 77; }
meta() { awk -F= -v k="$2" '$1 == k {print $2}' "$FORKPOINT_HOME/sessions/$1/session.meta"; }
ended() { wait_for 20 grep -q '^state=exited' "$FORKPOINT_HOME/sessions/$1/session.meta"; }

wd=$WORK/wd
mkdir -p "$wd"
"$FP" run --shell --workdir "$wd" --name sh >/dev/null || fail "run --shell"
track_pid "$(session_field sh helper_pid)"
x() { "$FP" exec sh "$@"; }
x -c "cd $wd; export V=one; echo one >f.txt; sleep 300 &" || fail "exec 1"
jpid=$(x -c 'jobs -p')
"$FP" snap sh s1 >/dev/null || fail "snap s1"
x -c 'export V=two; echo two >f.txt; mkdir sub; cd sub' || fail "exec 2"
"$FP" snap sh s2 >/dev/null || fail "snap s2"
shell=$(session_field sh target_pid)
x -c 'kill %1; exit 0' 2>/dev/null
ended sh || fail "the shell's exit did not end the session"
"$FP" list | grep -Eq '^sh +exited .* s1, s2$' || fail "list: $("$FP" list)"
err=$("$FP" exec sh -c true 2>&1) && fail "exec on an ended session worked"

# From the first snapshot.
out=$("$FP" restore sh s1) || fail "restore of an ended session: $out"
[[ $out == "$shell" ]] || fail "restored pid $out, the shell was $shell"
track_pid "$(session_field sh helper_pid)"
[[ $(session_field sh state) == running ]] || fail "not running after the restore"
[[ $(x -c 'echo "$V $(pwd) $(cat f.txt)"') == "one $wd one" ]] || fail "state of s1: $(x -c 'echo "$V $(pwd)"; ls')"
[[ $(x -c jobs) == *Running*"sleep 300"* ]] || fail "the job is not back: $(x -c jobs)"
[[ -e /proc/$jpid ]] || fail "the job's process $jpid is not back"
x -c 'test ! -e sub' || fail "sub/ of s2 is there in s1"
[[ -z $(ls -A "$wd") ]] || fail "the workdir itself was written: $(ls -A "$wd")"
# The revived session is a session like any: restore in place, snap, exec.
"$FP" restore sh s2 >/dev/null || fail "in-place restore of s2 after the revival"
[[ $(x -c 'echo "$V $(pwd) $(cat ../f.txt)"') == "two $wd/sub two" ]] || fail "state of s2: $(x -c 'echo $V; pwd')"
"$FP" snap sh s3 >/dev/null || fail "snap after the revival"

# Stopped, then brought back from s2.
"$FP" stop sh || fail "stop"
out=$("$FP" restore sh s2 --quiet) || fail "restore of a stopped session: $out"
track_pid "$(session_field sh helper_pid)"
[[ $out == "sh,$wd,$shell" ]] || fail "restore --quiet of a stopped session printed '$out'"
[[ $(x -c 'echo $V; pwd') == $'two\n'"$wd/sub" ]] || fail "state of s2 after stop: $(x -c 'echo $V; pwd')"

# Its helper killed, with processes left: refused until they are gone.
helper=$(session_field sh helper_pid)
x -c "(trap '' HUP; exec sleep 1000) >/dev/null 2>&1 & echo \$! >$WORK/left" || fail "start a leftover"
track_pid "$(cat "$WORK/left")"
kill -9 "$helper"
wait_for 20 bash -c "[[ ! -e /proc/$helper || \$(awk '{print \$3}' /proc/$helper/stat) == Z ]]" || fail "the helper survived SIGKILL"
err=$("$FP" restore sh s1 2>&1) && fail "restore with leftovers of the session running worked"
[[ $err == *"cleanup --force"* ]] || fail "message: $err"
left=$(cat "$WORK/left")
kill -9 "$left"
wait_for 20 bash -c "[[ ! -e /proc/$left || \$(awk '{print \$3}' /proc/$left/stat) == Z ]]" || fail "the leftover survived SIGKILL"
out=$("$FP" restore sh s1 2>&1) || fail "restore after the leftovers died: $out"
track_pid "$(session_field sh helper_pid)"
[[ $(x -c 'echo $V') == one ]] || fail "state of s1 after the helper was killed"
"$FP" cleanup sh >/dev/null || fail "cleanup sh"

# A detached program that exited: its stdin pipe comes back with it.
"$FP" run --detach --name d -- bash >/dev/null || fail "run -d bash"
track_pid "$(session_field d helper_pid)"
in=$FORKPOINT_HOME/sessions/d/stdin log=$FORKPOINT_HOME/sessions/d/output.log
echo 'N=5; echo set' >"$in"
wait_for 20 grep -q '^set$' "$log" || fail "d: first command"
"$FP" snap d s1 >/dev/null || fail "snap d"
echo 'exit 0' >"$in"
ended d || fail "d did not end"
err=$("$FP" restore d nope 2>&1) && fail "restore of a missing snapshot worked"
[[ $err == *"no complete snapshot 'nope'"* ]] || fail "message: $err"
"$FP" restore d s1 >/dev/null || fail "restore d s1"
track_pid "$(session_field d helper_pid)"
echo 'echo "N is $N"' >"$in"
wait_for 20 grep -q '^N is 5$' "$log" || fail "d after the revival: $(cat "$log")"
"$FP" cleanup d >/dev/null || fail "cleanup d"
echo ok
