# Interactive programs (bash, less, vim, sqlite3) restored with -d on a real
# terminal (a tmux pane).
# The shell the restore was typed in keeps its keyboard and its foreground;
# a job that had the terminal's foreground comes back stopped, as after ^Z,
# before any of its own code runs (a running bash would take the terminal
# back by itself before its next prompt; vim and less would read the
# shell's keys or fail on EIO). A forkpoint process stays its parent, so its
# group is not orphaned and keeps job control: `forkpoint fg PID`, typed
# in that shell, continues it in the foreground, where it reads its keys;
# ^Z stops it again and fg brings it back. fg exits with the job's status.
# Every check waits for a side effect in a file, not for text on the
# screen, which a full-screen program may erase (vim's alternate screen).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/tmux.inc"
field() { awk -v f="$2" '{sub(/^.*\) /, ""); print $(f - 2)}' "/proc/$1/stat"; } # stat field N (after comm)
# The job's process group has the terminal's foreground (tpgid).
fg_is() { [[ $(field "$1" 8) == "$(field "$1" 5)" ]]; }
state_is() { [[ $(field "$1" 3 2>/dev/null) == "$2" ]]; }
not_stopped() { ! state_is "$1" T; }

start_pane() { # NAME: a pane whose shell prompts "sh$ "
	"${TM[@]}" new-session -d -s "$1" -x 100 -y 20 "env PS1='sh\$ ' bash --norc --noprofile -i"
	shows "$1" 'sh$' || fail "$1: no prompt"
}
# typed PANE COMMAND: the pane's shell runs COMMAND; waits until it has.
typed() {
	rm -f "$WORK/$1.done"
	keys "$1" "$2; echo \$? >'$WORK/$1.done'" Enter
	wait_for 30 test -s "$WORK/$1.done" || fail "$1: the pane's shell did not run '$2': $(screen "$1")"
}
# restore_d PANE DIR: restore -d from the pane's shell; prints the pid.
restore_d() {
	typed "$1" "'$FP' restore -D '$2' -d >'$WORK/$1.pid' 2>'$WORK/$1.err'"
	[[ $(<"$WORK/$1.done") == 0 ]] || fail "$1: restore -d failed: $(cat "$WORK/$1.err"; screen "$1")"
	cat "$WORK/$1.pid"
}
# The job sits stopped in the background of a group that is not orphaned
# (its parent, the keeper, is in another group of the same session), and
# the pane's shell has its keyboard.
detached_stopped() { # PANE PID
	wait_for 10 state_is "$2" T || fail "$1: the job restored with -d is not stopped ($(field "$2" 3))"
	fg_is "$2" && fail "$1: the job restored with -d has the terminal's foreground"
	local keeper
	keeper=$(field "$2" 4)
	[[ $(cat "/proc/$keeper/comm") == fp-job-keeper ]] || fail "$1: the job's parent is $(cat "/proc/$keeper/comm")"
	[[ $(field "$keeper" 6) == "$(field "$2" 6)" && $(field "$keeper" 5) != "$(field "$2" 5)" ]] ||
		fail "$1: the keeper is not in the job's session, outside its group"
	grep -qF 'forkpoint fg' "$WORK/$1.err" || fail "$1: restore -d did not say how to continue the job"
	typed "$1" "echo shell-\$((20 + 1)) >'$WORK/$1.shell'"
	[[ $(<"$WORK/$1.shell") == shell-21 ]] || fail "$1: the pane's shell lost its keyboard"
	state_is "$2" T || fail "$1: the stopped job woke up on the shell's keys"
	echo "$keeper"
}
# fg_start PANE PID: `forkpoint fg PID` in the pane; the job runs in the foreground.
fg_start() {
	rm -f "$WORK/$1.fgrc"
	keys "$1" "'$FP' fg $2; echo \$? >'$WORK/$1.fgrc'" Enter
	wait_for 20 fg_is "$2" || fail "$1: fg did not give the job the foreground: $(screen "$1")"
	wait_for 10 not_stopped "$2" || fail "$1: fg did not continue the job"
}
fg_ended() { # PANE RC
	wait_for 20 test -s "$WORK/$1.fgrc" || fail "$1: fg did not return: $(screen "$1")"
	[[ $(<"$WORK/$1.fgrc") == "$2" ]] || fail "$1: fg exited $(<"$WORK/$1.fgrc"), not $2"
}

# 1. An interactive bash inside the pane's shell.
start_pane b
keys b "env PS1='inner\$ ' bash --norc --noprofile -i" Enter
shows b 'inner$' || fail "inner bash did not prompt"
keys b 'X=kept; echo set-$X' Enter
shows b 'set-kept' || fail "the inner bash did not take X"
bp=$(pgrep -n -x bash -P "$("${TM[@]}" display -p -t b '#{pane_pid}')")
[[ -n $bp ]] || fail "no inner bash"
"$FP" dump -t "$bp" -D "$WORK/bash" >/dev/null || fail "dump of the inner bash"
wait_for 15 test ! -e "/proc/$bp" || fail "the inner bash still runs after the dump"
typed b true # the pane's shell has its terminal back
[[ $(restore_d b "$WORK/bash") == "$bp" ]] || fail "restored bash pid"
bk=$(detached_stopped b "$bp") || exit 1
fg_start b "$bp"
keys b "echo inner-\$X-\$\$ >'$WORK/b.inner'" Enter
wait_for 20 test -s "$WORK/b.inner" || fail "the restored bash does not read its keys: $(screen b)"
[[ $(<"$WORK/b.inner") == "inner-kept-$bp" ]] || fail "the restored bash wrote $(<"$WORK/b.inner")"
keys b 'exit 7' Enter
fg_ended b 7 # fg exits with the job's own status
wait_for 10 test ! -e "/proc/$bk" || fail "the keeper $bk outlived its job"
typed b "echo back >'$WORK/b.back'" # the pane's shell has its keyboard again

# 2. less: paged in the foreground, ^Z stops it again, fg brings it back.
start_pane l
seq 1 500 >"$WORK/numbers"
keys l "less -N '$WORK/numbers'" Enter
wait_for 20 pgrep -f "^less -N $WORK/numbers" >/dev/null || fail "less did not start"
lp=$(pgrep -f "^less -N $WORK/numbers")
"$FP" dump -t "$lp" -D "$WORK/less" >/dev/null || fail "dump of less"
wait_for 15 test ! -e "/proc/$lp" || fail "less still runs after the dump"
typed l true
[[ $(restore_d l "$WORK/less") == "$lp" ]] || fail "restored less pid"
lk=$(detached_stopped l "$lp") || exit 1
fg_start l "$lp"
keys l G
shows l '500 500' || fail "the restored less does not page: $(screen l)"
keys l C-z
fg_ended l 148
wait_for 10 state_is "$lp" T || fail "^Z did not stop less"
typed l "echo shell-again >'$WORK/l.again'"
fg_start l "$lp"
kill -KILL "$lp"
fg_ended l 137 # 128+SIGKILL, as a shell reports it
wait_for 10 test ! -e "/proc/$lk" || fail "the keeper $lk outlived less"

# 3. vim: edits and writes only once it is in the foreground again.
start_pane v
keys v "vim -u NONE -N -n '$WORK/file.txt'" Enter
wait_for 20 pgrep -f "^vim -u NONE -N -n $WORK/file.txt" >/dev/null || fail "vim did not start"
vp=$(pgrep -f "^vim -u NONE -N -n $WORK/file.txt")
keys v 'ibefore dump' Escape
shows v 'before dump' || fail "vim did not take the text"
"$FP" dump -t "$vp" -D "$WORK/vim" >/dev/null || fail "dump of vim"
wait_for 15 test ! -e "/proc/$vp" || fail "vim still runs after the dump"
typed v true
[[ $(restore_d v "$WORK/vim") == "$vp" ]] || fail "restored vim pid"
detached_stopped v "$vp" >/dev/null || exit 1
[[ ! -e $WORK/file.txt ]] || fail "vim wrote its file from the background: $(cat "$WORK/file.txt")"
fg_start v "$vp"
keys v 'A, after restore' Escape ':wq' Enter
fg_ended v 0
[[ $(cat "$WORK/file.txt") == "before dump, after restore" ]] || fail "vim wrote: $(cat "$WORK/file.txt")"

# 4. sqlite3's prompt: the query typed after fg is its, not the shell's.
if command -v sqlite3 >/dev/null; then
	start_pane q
	keys q "sqlite3 -interactive '$WORK/q.db'" Enter
	wait_for 20 pgrep -f "^sqlite3 -interactive $WORK/q.db" >/dev/null || fail "sqlite3 did not start"
	qp=$(pgrep -f "^sqlite3 -interactive $WORK/q.db")
	# (a final ; would end the tmux command: a space after it)
	keys q 'create table t(x); insert into t values(21); ' Enter
	wait_for 20 bash -c "sqlite3 '$WORK/q.db' 'select x from t' 2>/dev/null | grep -qx 21" || fail "sqlite3 did not take the insert"
	"$FP" dump -t "$qp" -D "$WORK/sqlite" >/dev/null || fail "dump of sqlite3"
	wait_for 15 test ! -e "/proc/$qp" || fail "sqlite3 still runs after the dump"
	typed q true
	[[ $(restore_d q "$WORK/sqlite") == "$qp" ]] || fail "restored sqlite3 pid"
	detached_stopped q "$qp" >/dev/null || exit 1
	fg_start q "$qp"
	keys q ".once $WORK/q.out" Enter 'select x * 2 from t; ' Enter
	wait_for 20 grep -qx 42 "$WORK/q.out" 2>/dev/null || fail "the restored sqlite3 does not answer: $(screen q)"
	keys q '.quit' Enter
	fg_ended q 0
fi
echo ok
