# forkpoint cleanup: a live session goes with its processes and files; a
# half-dead one (its helper killed with SIGKILL, its processes scattered to
# other parents, a setsid daemon, a process that ignores signals, its mount
# namespace pinned by a bind mount) is refused without --force, naming what
# holds it, and --force leaves no mount, process or directory behind.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (--workdir mounts an overlay)"; exit 77; }
command -v setsid >/dev/null || { echo "no setsid"; exit 77; }

trap 'umount -l "$WORK/nspin" 2>/dev/null; cleanup' EXIT
sdir() { echo "$FORKPOINT_HOME/sessions/$1"; }
# Any mount, in any process's namespace, that names the session directory.
mounts_of() { cat /proc/[0-9]*/mountinfo 2>/dev/null | grep -F -- "$1" | sort -u; }
all_gone() { local p; for p; do [[ -e /proc/$p ]] && [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]] && return 1; done; return 0; }

# --- a live session ----------------------------------------------------------
"$FP" run --detach --name live -- sh -c 'sleep 1000 & exec sleep 1001' >/dev/null || fail "run live"
helper=$(session_field live helper_pid); track_pid "$helper"
target=$(session_field live target_pid)
"$FP" snap live s1 >/dev/null || fail "snap live"
out=$("$FP" cleanup live) || fail "cleanup of a live session: $out"
all_gone "$helper" "$target" || fail "cleanup left the helper or the target"
[[ ! -e $(sdir live) ]] || fail "cleanup left $(sdir live)"
"$FP" run --detach --name live -- sleep 1000 >/dev/null || fail "the name is not free after cleanup"
track_pid "$(session_field live helper_pid)"
[[ $("$FP" cleanup --quiet live) == "" ]] || fail "cleanup --quiet printed something"
err=$("$FP" cleanup live 2>&1) && fail "cleanup of a session that does not exist succeeded"
[[ $err == *"no session named 'live'"* ]] || fail "message for a missing session: $err"
err=$("$FP" cleanup ../x 2>&1) && fail "cleanup ../x accepted"

# --- a half-dead session: the helper killed with SIGKILL --------------------
wd=$WORK/wd
mkdir -p "$wd"
pids=$WORK/pids
: >"$pids"
"$FP" run --shell --workdir "$wd" --name half >/dev/null || fail "run --shell --workdir"
helper=$(session_field half helper_pid); track_pid "$helper"
shell=$(session_field half target_pid)
"$FP" exec half -c "echo data >file.txt; sleep 1000 & echo \$! >>$pids" || fail "exec job"
"$FP" exec half -c "setsid sh -c 'trap \"\" TERM HUP INT; echo \$\$ >>$pids; exec sleep 1002' </dev/null >/dev/null 2>&1 &" ||
	fail "exec daemon"
"$FP" exec half -c "(trap '' TERM HUP INT; cd $wd; echo \$BASHPID >$WORK/stubborn; exec 3<file.txt; while :; do sleep 1; done) </dev/null >/dev/null 2>&1 &" ||
	fail "exec stubborn"
wait_for 20 test -s "$WORK/stubborn" || fail "the stubborn process did not start"
cat "$WORK/stubborn" >>"$pids"
wait_for 20 bash -c "(( \$(wc -l <'$pids') == 3 ))" || fail "processes not started: $(cat "$pids")"
"$FP" snap half s1 >/dev/null || fail "snap half"
ns=$(stat -L -c %i "/proc/$shell/ns/mnt")
for p in $(cat "$pids"); do track_pid "$p"; done
# Something outside the session pins its mount namespace.
touch "$WORK/nspin"
mount --bind "/proc/$shell/ns/mnt" "$WORK/nspin" || fail "bind mount of the namespace"
[[ -n $(mounts_of "$(sdir half)") ]] || fail "no overlay mount names the session before the kill"
kill -9 "$helper"
wait_for 20 test ! -e "/proc/$helper" || fail "the helper survived SIGKILL"
# The shell gets SIGHUP when its terminal's master goes with the helper; its
# job too. The daemon and the process that ignores signals stay.
stubborn=$(cat "$WORK/stubborn")
all_gone "$stubborn" && fail "the session's processes died with the helper (nothing to clean)"

"$FP" list | grep -Eq '^half +dead' || fail "list does not show the session dead: $("$FP" list)"
err=$("$FP" cleanup half 2>&1) && fail "cleanup without --force of a half-dead session succeeded"
[[ $err == *"still run"* && $err == *"--force"* && $err == *"$stubborn (bash"* ]] || fail "message without --force: $err"
[[ -e $(sdir half) ]] || fail "cleanup without --force removed the directory"
all_gone "$stubborn" && fail "cleanup without --force killed a process"

out=$("$FP" cleanup --force half 2>&1) || fail "cleanup --force: $out"
[[ $out == *"leftover processes killed"* ]] || fail "cleanup --force says: $out"
all_gone "$shell" $(cat "$pids") || fail "processes left after cleanup --force: $(ps -o pid,stat,wchan,cmd -p "$shell,$(paste -sd, "$pids")")"
for p in $(ls /proc | grep -E '^[0-9]+$'); do
	[[ $(stat -L -c %i "/proc/$p/ns/mnt" 2>/dev/null) == "$ns" ]] && fail "process $p is still in the session's mount namespace"
done
m=$(mounts_of "$(sdir half)"); [[ -z $m ]] || fail "mounts left after cleanup --force: $m"
grep -q "mnt:\[$ns\]" /proc/self/mountinfo && fail "the namespace pin is still mounted"
[[ ! -e $(sdir half) ]] || fail "cleanup --force left $(sdir half)"
[[ -z $(ls -A "$wd") ]] || fail "the workdir itself was written: $(ls -A "$wd")"
"$FP" run --shell --name half >/dev/null || fail "the name is not free after cleanup --force"
track_pid "$(session_field half helper_pid)"
"$FP" cleanup --force half >/dev/null || fail "cleanup --force of a healthy session"
[[ ! -e $(sdir half) ]] || fail "cleanup --force of a healthy session left its directory"

# --- a plain session (no workdir) whose helper was killed --------------------
: >"$pids"
"$FP" run --detach --name plain -- sh -c "setsid sh -c 'echo \$\$ >>$pids; exec sleep 1003' & echo \$\$ >>$pids; exec sleep 1004" >/dev/null || fail "run plain"
helper=$(session_field plain helper_pid); track_pid "$helper"
wait_for 20 bash -c "(( \$(wc -l <'$pids') == 2 ))" || fail "plain: not started"
for p in $(cat "$pids"); do track_pid "$p"; done
kill -9 "$helper"
wait_for 20 test ! -e "/proc/$helper" || fail "plain: the helper survived SIGKILL"
"$FP" cleanup --force plain >/dev/null || fail "cleanup --force plain"
all_gone $(cat "$pids") || fail "plain: processes left: $(cat "$pids")"
[[ ! -e $(sdir plain) ]] || fail "plain: directory left"
echo ok
