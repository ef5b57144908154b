# Terminals: a program whose stdio is a pseudo-terminal (started from a
# terminal, here one made by `script`) is snapshotted with its terminal, its
# images read by crit and by `criu restore --shell-job`, and restored natively
# with the same fds (flags, shared descriptions) and the terminal's modes.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root"; exit 77; }
command -v script >/dev/null || { echo "no script(1) to make a terminal"; exit 77; }

# in_pty CMD: runs CMD in the background on a new pseudo-terminal; the
# terminal lives as long as CMD does.
in_pty() { script -qfc "$1" /dev/null </dev/null >/dev/null 2>&1 & track_pid $!; }
pts_of() { readlink "/proc/$1/fd/0"; }

# --- A session started from a terminal -----------------------------------
st=$WORK/session.status
in_pty "exec '$FP' run --name tty -- '$T/ct_idle' '$st' --same-pid"
wait_for 20 grep -qs '^ready' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
pid=$(session_field tty target_pid)
track_pid "$pid"
pts=$(pts_of "$pid")
[[ $pts == /dev/pts/* ]] || fail "the target's stdin is $pts, not a terminal"

"$FP" snap tty s1 >/dev/null || fail "snap of a program on a terminal"
snap=$FORKPOINT_HOME/sessions/tty/snapshots/s1
if command -v crit >/dev/null; then
	crit decode -i "$snap/tty-info.img" | grep -q '"type": "PTY"' || fail "crit: no PTY in tty-info.img"
	crit decode -i "$snap/files.img" | grep -q '"type": "TTY"' || fail "crit: no TTY file entry"
fi
v=$(ct_verify "$st" "$pid") || fail "verify 1: $v"

# The terminal's modes change after the snapshot; the restore puts them back.
stty -F "$pts" -echo || fail "stty -echo"
stty -F "$pts" -a | grep -q -- '-echo ' || fail "stty did not turn echo off"
out=$("$FP" restore tty s1 --json) || fail "restore of the terminal session: $out"
grep -Eq '"engine": "(in-place|native)"' <<<"$out" || fail "not restored natively: $out"
v=$(ct_verify "$st" "$pid") || fail "verify after restore: $v"
[[ $v == "verify 1 ok"* ]] || fail "state after restore: $v"
[[ $(pts_of "$pid") == "$pts" ]] || fail "restored on $(pts_of "$pid"), not on $pts"
stty -F "$pts" -a | grep -q ' echo ' || fail "the terminal's modes were not restored: $(stty -F "$pts" -a)"
"$FP" stop tty

# --- A session leader owning its terminal, dumped by pid ------------------
st2=$WORK/leader.status
# --loose-fds: it comes back on another terminal, so its fd paths change.
in_pty "exec '$T/ct_idle' '$st2' --same-pid --loose-fds"
wait_for 20 grep -qs '^ready' "$st2" || fail "leader not ready"
pid2=$(awk '/^ready/{print $2}' "$st2")
track_pid "$pid2"
pts2=$(pts_of "$pid2")
"$FP" dump -t "$pid2" -D "$WORK/d" --compress none >/dev/null || fail "dump of a terminal's session leader"
wait_for 15 test ! -e "/proc/$pid2" || fail "$pid2 still exists after the dump"
wait_for 15 test ! -e "$pts2" || fail "its terminal $pts2 outlived it"

# Its terminal died with it, and this restore has none: a clear refusal.
err=$("$FP" restore -D "$WORK/d" --engine native 2>&1) && fail "restored onto a terminal that is gone"
[[ $err == *"run the restore from a terminal"* ]] || fail "message for a gone terminal: $err"
[[ ! -e /proc/$pid2 ]] || fail "a refused restore left process $pid2"

# Restored from a terminal, it comes back on that one (--shell-job style).
in_pty "'$FP' restore -D '$WORK/d' --engine native -d -o '$WORK/native.log' >'$WORK/native.out' 2>&1; exec sleep 600"
wait_for 20 test -s "$WORK/native.out" || fail "native restore printed nothing"
[[ $(cat "$WORK/native.out") == "$pid2" ]] || fail "native restore: $(cat "$WORK/native.out")"
v=$(ct_verify "$st2" "$pid2") || fail "verify after the native restore: $v"
[[ $(pts_of "$pid2") == /dev/pts/* ]] || fail "native restore: stdin is $(pts_of "$pid2")"
kill -9 "$pid2"
wait_for 15 test ! -e "/proc/$pid2" || fail "$pid2 still exists after kill"

# A job of a shell (not a session leader) through CRIU 4.x --shell-job: the
# shape CRIU restores onto the terminal it runs in.
if find_criu; then
	st3=$WORK/job.status
	in_pty "'$T/ct_idle' '$st3' --same-pid --loose-fds; exit 0"
	wait_for 20 grep -qs '^ready' "$st3" || fail "shell job not ready"
	pid3=$(awk '/^ready/{print $2}' "$st3")
	track_pid "$pid3"
	"$FP" dump -t "$pid3" -D "$WORK/job" >/dev/null || fail "dump of a shell job"
	wait_for 15 test ! -e "/proc/$pid3" || fail "$pid3 still exists after the dump"
	in_pty "'$FP' restore -D '$WORK/job' --engine criu -d -o '$WORK/criu.log' >'$WORK/criu.out' 2>&1; exec sleep 600"
	wait_for 60 test -s "$WORK/criu.out" || fail "criu restore printed nothing"
	[[ $(cat "$WORK/criu.out") == "$pid3" ]] || fail "criu restore: $(cat "$WORK/criu.out")"
	v=$(ct_verify "$st3" "$pid3") || fail "verify after criu restore: $v"
	[[ $(pts_of "$pid3") == /dev/pts/* ]] || fail "criu restore: stdin is $(pts_of "$pid3")"
	kill -9 "$pid3"
else
	skip_part "criu restore --shell-job of a shell job"
fi
echo ok
