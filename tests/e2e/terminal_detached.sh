# Interactive programs restored with -d on a real terminal (a tmux pane):
# the shell the restore was typed in keeps its keyboard and its foreground;
# the restored job runs in the background and eats none of the keys typed
# to that shell (before, both read the keyboard). Known limit, checked here
# so that a change shows: its parent (the restore) has exited, so its
# process group is orphaned, and a terminal read from the background fails
# with EIO rather than stopping it (POSIX): an interactive bash exits on the
# first key, and `fg` cannot bring it back. Without -d (terminal_jobs.sh)
# each keeps its terminal and its foreground.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/tmux.inc"
field() { awk -v f="$2" '{sub(/^.*\) /, ""); print $(f - 2)}' "/proc/$1/stat"; } # stat field N (after comm)
# The job's process group has the terminal's foreground (tpgid).
fg_is() { [[ $(field "$1" 8) == "$(field "$1" 5)" ]]; }

start_pane() { # NAME: a pane whose shell prompts "sh$ "
	"${TM[@]}" new-session -d -s "$1" -x 100 -y 20 "env PS1='sh\$ ' bash --norc --noprofile -i"
	shows "$1" 'sh$' || fail "$1: no prompt"
}
# restored_d PANE DIR: restore -d from the pane's shell; prints the pid.
restore_d() {
	# The exit status goes to a file: the restored job may redraw the
	# screen (less does) over what the shell prints.
	keys "$1" "'$FP' restore -D '$2' -d >'$WORK/$1.pid' 2>'$WORK/$1.err'; echo \$? >'$WORK/$1.rc'" Enter
	wait_for 30 test -s "$WORK/$1.rc" || fail "$1: restore -d did not end: $(screen "$1")"
	[[ $(<"$WORK/$1.rc") == 0 ]] || fail "$1: restore -d failed: $(cat "$WORK/$1.err"; screen "$1")"
	cat "$WORK/$1.pid"
}
# The pane's shell has its keyboard while the job sits in the background.
shell_keeps_keyboard() { # PANE PID
	keys "$1" 'echo "shell $((20 + 1))"' Enter
	shows "$1" 'shell 21' || fail "$1: the pane's shell lost its keyboard: $(screen "$1")"
	fg_is "$2" && fail "$1: the job restored with -d has the terminal's foreground"
	[[ -e /proc/$2 ]] || fail "$1: the restored job $2 died"
}

# 1. An interactive bash inside the pane's shell.
start_pane b
keys b "env PS1='inner\$ ' bash --norc --noprofile -i" Enter
shows b 'inner$' || fail "inner bash did not prompt"
keys b 'X=kept' Enter
bp=$(pgrep -n -x bash -P "$("${TM[@]}" display -p -t b '#{pane_pid}')")
[[ -n $bp ]] || fail "no inner bash"
"$FP" dump -t "$bp" -D "$WORK/bash" >/dev/null || fail "dump of the inner bash"
wait_for 15 test ! -e "/proc/$bp" || fail "the inner bash still runs after the dump"
shows b 'sh$' || fail "the pane's shell did not get its prompt back"
[[ $(restore_d b "$WORK/bash") == "$bp" ]] || fail "restored bash pid"
keys b 'echo "shell $((20 + 1))"' Enter
shows b 'shell 21' || fail "b: the pane's shell lost its keyboard: $(screen b)"
dead() { [[ ! -e /proc/$1 || $(field "$1" 3 2>/dev/null) == Z ]]; }
wait_for 20 dead "$bp" ||
	fail "the restored bash survived a read in the background of an orphaned group (the limit is gone: update this test and the README)"

# 2. less
start_pane l
seq 1 500 >"$WORK/numbers"
keys l "less -N '$WORK/numbers'" Enter
wait_for 20 pgrep -f "^less -N $WORK/numbers" >/dev/null || fail "less did not start"
lp=$(pgrep -f "^less -N $WORK/numbers")
"$FP" dump -t "$lp" -D "$WORK/less" >/dev/null || fail "dump of less"
wait_for 15 test ! -e "/proc/$lp" || fail "less still runs after the dump"
shows l 'sh$' || fail "the shell did not get its prompt back"
[[ $(restore_d l "$WORK/less") == "$lp" ]] || fail "restored less pid"
shell_keeps_keyboard l "$lp"

# 3. vim
start_pane v
keys v "vim -u NONE -N -n '$WORK/file.txt'" Enter
wait_for 20 pgrep -f "^vim -u NONE -N -n $WORK/file.txt" >/dev/null || fail "vim did not start"
vp=$(pgrep -f "^vim -u NONE -N -n $WORK/file.txt")
keys v 'ibefore dump' Escape
shows v 'before dump' || fail "vim did not take the text"
"$FP" dump -t "$vp" -D "$WORK/vim" >/dev/null || fail "dump of vim"
wait_for 15 test ! -e "/proc/$vp" || fail "vim still runs after the dump"
keys v Enter
shows v 'sh$' || fail "the shell did not get its prompt back"
[[ $(restore_d v "$WORK/vim") == "$vp" ]] || fail "restored vim pid"
shell_keeps_keyboard v "$vp"
[[ ! -e $WORK/file.txt ]] || fail "vim wrote its file from the background: $(cat "$WORK/file.txt")"
echo ok
