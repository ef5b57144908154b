# Interactive programs on a real terminal (a tmux pane) keep working after a
# restore: the restored job gets the terminal's foreground back, so its
# reads do not fail with EIO (a shell would exit) or stop it with SIGTTIN.
#   - a session's interactive bash, restored to a snapshot, takes commands
#     at once and has the snapshot's variables;
#   - less, dumped and restored in the pane (no -d), pages and quits, and
#     the pane's shell gets its prompt back;
#   - vim (it holds a POSIX timer), restored the same way, edits and writes.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/tmux.inc"

# 1. A session's bash, restored to a snapshot while it sits at its prompt.
"${TM[@]}" new-session -d -s s1 -x 120 -y 30 "env PS1='fp\$ ' '$FP' run --name tj -- bash --norc --noprofile -i; sleep 600"
shows s1 'fp$' || fail "the session's bash never prompted: $(screen s1)"
keys s1 'X=before' Enter
shows s1 'fp$ X=before' || fail "no echo"
"$FP" snap tj s1 >/dev/null || fail "snap"
keys s1 'X=after' Enter
shows s1 'fp$ X=after' || fail "no echo"
"$FP" restore tj s1 >/dev/null || fail "restore"
keys s1 'echo "X is $X, $((6 * 7))"' Enter
shows s1 'X is before, 42' || fail "the restored bash does not answer: $(screen s1)"
[[ $(session_field tj state) == running ]] || fail "the session's bash is gone: $(screen s1)"

# 2. less in the pane's own shell, dumped (that kills it) and restored in
# the same pane without -d.
"${TM[@]}" new-session -d -s s2 -x 100 -y 20 "env PS1='sh\$ ' bash --norc --noprofile -i"
shows s2 'sh$' || fail "no prompt"
seq 1 500 >"$WORK/numbers"
keys s2 "less -N '$WORK/numbers'" Enter
wait_for 20 pgrep -f "^less -N $WORK/numbers" >/dev/null || fail "less did not start"
lp=$(pgrep -f "^less -N $WORK/numbers")
"$FP" dump -t "$lp" -D "$WORK/less" >/dev/null || fail "dump of less"
wait_for 15 test ! -e "/proc/$lp" || fail "less still runs after the dump"
shows s2 'sh$' || fail "the shell did not get its prompt back"
keys s2 "'$FP' restore -D '$WORK/less'; echo restore-rc=\$?" Enter
wait_for 20 test -e "/proc/$lp" || fail "less was not restored: $(screen s2)"
keys s2 G
shows s2 '500 500' || fail "the restored less does not page: $(screen s2)"
[[ $(awk '{print $3}' "/proc/$lp/stat") != T ]] || fail "the restored less is stopped"
keys s2 q
shows s2 'restore-rc=0' || fail "less did not quit, or restore failed: $(screen s2)"

# 3. vim the same way; it writes what it was given before and after.
keys s2 "vim -u NONE -N -n '$WORK/file.txt'" Enter
wait_for 20 pgrep -f "^vim -u NONE -N -n $WORK/file.txt" >/dev/null || fail "vim did not start"
vp=$(pgrep -f "^vim -u NONE -N -n $WORK/file.txt")
keys s2 'ibefore dump' Escape
shows s2 'before dump' || fail "vim did not take the text"
"$FP" dump -t "$vp" -D "$WORK/vim" >/dev/null || fail "dump of vim"
wait_for 15 test ! -e "/proc/$vp" || fail "vim still runs after the dump"
keys s2 Enter
keys s2 "'$FP' restore -D '$WORK/vim'; echo vim-rc=\$?" Enter
wait_for 20 test -e "/proc/$vp" || fail "vim was not restored: $(screen s2)"
keys s2 'A, after restore' Escape ':wq' Enter
shows s2 'vim-rc=0' || fail "vim did not exit: $(screen s2)"
[[ $(cat "$WORK/file.txt") == "before dump, after restore" ]] || fail "vim wrote: $(cat "$WORK/file.txt")"
echo ok
