# A non-root user's sessions (issue 11, item 4): a user who may not choose
# pids gets what can be done (a rollback in place) and a refusal made before
# anything is touched for what cannot (a full restore); after a refused
# restore the session is the one from before and works on: its target
# passes its own check, exec, inspect, snap and the next restore work.
#   - `run -- sleep 1000; snap; restore`: in place, same pid (the issue's
#     reproducer), with a pipe fd inherited from root (0600 to root: the
#     dumper cannot reopen it, it takes the process's own file);
#   - a shell session whose tree changed since the snapshot (a job started):
#     no rollback in place, no full restore without CAP_CHECKPOINT_RESTORE:
#     refused, nothing changed, the refusal says why for both;
#   - a rollback in place failing half way (FORKPOINT_FAULT) writes the
#     saved state back;
#   - an ended session cannot be brought back without the right to choose
#     pids: refused, its snapshots kept, no process left behind.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root to make a non-root user and run as it"; exit 77; }
U=fpnonroot
if ! id "$U" >/dev/null 2>&1; then
	command -v useradd >/dev/null || { echo "no useradd here: cannot make a non-root user"; exit 77; }
	# another run may make it at the same moment: then it exists
	useradd --system --no-create-home --shell /bin/bash "$U" 2>"$WORK/useradd.err" || id "$U" >/dev/null 2>&1 ||
		{ echo "useradd $U failed: $(cat "$WORK/useradd.err")"; exit 77; }
fi
chmod 711 "$WORK"
nr=$WORK/nr; mkdir -m 700 "$nr"; chown "$U" "$nr"
# as_user [KEEP_FDS] -- COMMAND: as $U with only stdio open (and the fds
# named in KEEP_FDS, e.g. "8 9"), FORKPOINT_HOME its own.
as_user() {
	local keep=
	[[ $1 != -- ]] && keep=$1 && shift
	shift
	su -s /bin/bash "$U" -c 'for f in /proc/$$/fd/*; do f=${f##*/}; ((f > 2)) && [[ " '"$keep"' " != *" $f "* ]] && eval "exec $f>&-"; done; '"export FORKPOINT_HOME=$nr/home; cd $nr; $*"
}
fpj() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
uid=$(id -u "$U")
owned_by_user() { [[ $(awk '/^Uid:/{print $2}' "/proc/$1/status") == "$uid" ]]; }

# --- the issue's reproducer, with root's pipes inherited -----------------
# fd 8: the write end of a pipe root drains; fd 9: the read end of one
# holding 3 bytes. Both inodes are root's (mode 0600).
exec 8> >(cat >/dev/null)
exec 9< <(printf 'hi\n'; exec sleep 1000)
track_pid $!
as_user "8 9" -- "$FP" run --detach --name u2 -- sleep 1000 >"$WORK/u2.out" ||
	fail "non-root run: $(cat "$WORK/u2.out")"
exec 8>&- 9<&-
pid=$(as_user -- "$FP" ps --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['target_pid'])")
track_pid "$pid"
owned_by_user "$pid" || fail "the target does not run as $U"
[[ -e /proc/$pid/fd/8 && -e /proc/$pid/fd/9 ]] || fail "the target lacks root's fds: $(ls -l "/proc/$pid/fd")"
out=$(as_user -- "$FP" snap u2 2>&1) || fail "non-root snap with root's pipes: $out"
[[ $out == snap-1 ]] || fail "snap said: $out"
# the dump peeked at the queued bytes, it did not take them (counted here
# without taking them either: a rollback in place needs SNAP's bytes there)
queued=$(python3 -c 'import fcntl, os, struct, sys, termios
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])' "/proc/$pid/fd/9")
[[ $queued == 3 ]] || fail "the pipe holds $queued bytes after the snap, not its 3"
as_user -- "$FP" restore u2 snap-1 --json >"$WORK/r.json" 2>&1 || fail "non-root restore: $(cat "$WORK/r.json")"
[[ $(fpj in_place <"$WORK/r.json") == True ]] || fail "not in place: $(cat "$WORK/r.json")"
[[ $(fpj pid <"$WORK/r.json") == "$pid" ]] || fail "the restore changed the pid: $(cat "$WORK/r.json")"
grep -q '^State:.*S' "/proc/$pid/status" || fail "target left $(grep State: "/proc/$pid/status")"
as_user -- "$FP" snap u2 >/dev/null || fail "snap after the restore"
as_user -- "$FP" restore u2 snap-2 >/dev/null || fail "the second restore"
as_user -- "$FP" stop --kill u2 >/dev/null || fail "stop u2"
wait_for 15 test ! -e "/proc/$pid" || fail "u2's target outlived stop"

# --- a shell session whose tree changed: refused, untouched, works on ----
as_user -- "$FP" run --shell --name sh >/dev/null || fail "non-root run --shell"
track_pid "$(as_user -- "$FP" ps --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['helper_pid'])")"
st=$nr/st
as_user -- "$FP" exec sh -c "'X=before; \"$T/ct_threads\" \"$st\" --quiet-stdio & echo \$!'" >"$WORK/ct.pid" ||
	fail "exec of the target"
ct=$(cat "$WORK/ct.pid"); track_pid "$ct"
wait_for 20 grep -q '^ready' "$st" || fail "target not ready: $(cat "$st")"
shell=$(as_user -- "$FP" ps --json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['target_pid'])")
as_user -- "$FP" snap sh s0 >/dev/null || fail "snap s0"
v=$(ct_verify "$st" "$ct") || fail "verify 1: $v"
out=$(as_user -- "$FP" exec sh -c "'X=after; sleep 1000 & echo \$!'") || fail "exec of the job"
track_pid "$out"
out=$(as_user -- "$FP" restore sh s0 2>&1) && fail "a non-root full restore succeeded: $out"
[[ $out == *"left as it was"* && $out == *CAP_CHECKPOINT_RESTORE* ]] || fail "refusal: $out"
[[ $out == *"rollback in place was not possible either"* ]] || fail "the refusal does not say why not in place: $out"
# the session from before, working
[[ -d /proc/$ct && -d /proc/$shell ]] || fail "a process of the session is gone"
grep -q '^State:.*[SR]' "/proc/$ct/status" || fail "target left $(grep State: "/proc/$ct/status")"
v=$(ct_verify "$st" "$ct") || fail "target after the refused restore: $v"
[[ $v == "verify 2 ok"* ]] || fail "the target is not as it was: $v"
[[ $(as_user -- "$FP" exec sh -c "'echo \$X'") == after ]] || fail "the shell's state changed"
as_user -- "$FP" inspect sh >"$WORK/inspect.out" 2>&1 || fail "inspect after the refusal: $(cat "$WORK/inspect.out")"
grep -q "process $shell (bash)" "$WORK/inspect.out" || fail "inspect: $(head -3 "$WORK/inspect.out")"
as_user -- "$FP" snap sh s1 >/dev/null || fail "snap after the refusal"
as_user -- "$FP" list sh | grep -q '^s1 ' || fail "s1 not listed: $(as_user -- "$FP" list sh)"
v=$(ct_verify "$st" "$ct") || fail "target after the snap: $v"
as_user -- "$FP" stop --kill sh >/dev/null || fail "stop sh"
wait_for 15 test ! -e "/proc/$ct" || fail "the shell's job outlived stop"

# --- a rollback in place failing half way --------------------------------
st2=$nr/st2
as_user -- FORKPOINT_FAULT=rollback-after-1-pages "$FP" run --detach --name rf -- "$T/ct_threads" "$st2" >/dev/null ||
	fail "run rf"
wait_for 20 grep -q '^ready' "$st2" || fail "rf not ready: $(cat "$st2")"
rpid=$(awk '/^ready/{print $2; exit}' "$st2"); track_pid "$rpid"
as_user -- "$FP" snap rf s0 >/dev/null || fail "snap rf"
v=$(ct_verify "$st2" "$rpid") || fail "rf verify 1: $v"
out=$(as_user -- "$FP" restore rf s0 2>&1) && fail "a rollback failing on purpose succeeded: $out"
[[ $out == *"back in its state from before"* ]] || fail "rf message: $out"
v=$(ct_verify "$st2" "$rpid") || fail "rf after the failed rollback: $v"
[[ $v == "verify 2 ok"* ]] || fail "rf is not as it was: $v"
out=$(as_user -- "$FP" restore rf s0 --json 2>&1) || fail "rollback without the fault: $out"
[[ $(fpj in_place <<<"$out") == True ]] || fail "rf not rolled back in place: $out"
v=$(ct_verify "$st2" "$rpid") || fail "rf after the rollback: $v"
[[ $v == "verify 1 ok"* ]] || fail "rf is not in s0's state: $v"

# --- an ended session: refused, its snapshots kept, nothing left running -
as_user -- "$FP" stop --kill rf >/dev/null || fail "stop rf"
wait_for 15 test ! -e "/proc/$rpid" || fail "rf's target outlived stop"
out=$(as_user -- "$FP" restore rf s0 2>&1) && fail "a non-root revival succeeded: $out"
[[ $out == *CAP_CHECKPOINT_RESTORE* ]] || fail "revival refusal: $out"
as_user -- "$FP" list rf | grep -q '^s0 ' || fail "s0 lost: $(as_user -- "$FP" list rf)"
[[ -z $(pgrep -u "$U" -f "$T/ct_threads") ]] || fail "a process was left behind: $(pgrep -u "$U" -af ct_threads)"
echo ok
