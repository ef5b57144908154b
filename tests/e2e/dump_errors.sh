# forkpoint dump refuses bad input with a clear message and a non-zero exit,
# and leaves the target running untouched; it works when started by a daemon.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
need_criu

expect_fail() { # expect_fail WHAT REGEX CMD...
	local what=$1 re=$2 out rc; shift 2
	out=$("$@" 2>&1); rc=$?
	[[ $rc != 0 ]] || fail "$what: exit 0 (output: $out)"
	[[ $out =~ $re ]] || fail "$what: message does not match /$re/: $out"
	echo "ok: $what -> $rc: $out"
}

# No such process (a pid above pid_max is never used).
expect_fail "no such pid" "no such process" "$FP" dump -t 99999999 -D "$WORK/x1"
[[ ! -e $WORK/x1 ]] || fail "a directory was left for a failed dump"

# A kernel thread.
expect_fail "kernel thread" "kernel thread" "$FP" dump -t 2 -D "$WORK/x2"

# A zombie: the child of a parent that never waits.
# Its pid from $! (no job control here, so setsid does not fork): a
# pgrep by name could pick another test's sleep.
(exec setsid bash -c 'sleep 0 & exec sleep 300' </dev/null >/dev/null 2>&1 & echo $! >"$WORK/zp")
ZP=$(cat "$WORK/zp"); track_pid "$ZP"
wait_for 10 bash -c "[[ \$(readlink /proc/$ZP/exe) == */sleep ]]" || fail "zombie parent did not start"
wait_for 10 grep -q "[0-9]" "/proc/$ZP/task/$ZP/children" || fail "no zombie child"
Z=$(tr -d ' \n' < "/proc/$ZP/task/$ZP/children")
wait_for 10 bash -c "[[ \$(awk '{print \$3}' /proc/$Z/stat) == Z ]]" || fail "child $Z is not a zombie"
expect_fail "zombie" "zombie" "$FP" dump -t "$Z" -D "$WORK/x3"
# A tree holding a zombie child is dumped (dump_zombies.sh restores one);
# with --leave-running its parent runs on, traced by no one, the zombie
# still its own.
"$FP" dump -R -t "$ZP" -D "$WORK/x3b" >/dev/null || fail "a tree with a zombie child was not dumped"
alive "$ZP" || fail "the zombie's parent died"
[[ $(grep TracerPid "/proc/$ZP/status" | awk '{print $2}') == 0 ]] || fail "the zombie's parent is still traced"
[[ $(awk '{print $3}' "/proc/$Z/stat") == Z ]] || fail "the zombie child was reaped by the dump"

start_ct t "$T/ct_heap" --mib=8
ct_verify t 1
n=1

# Already traced: the message names the tracer.
strace -p "$PID" -o /dev/null 2>/dev/null & SP=$!
track_pid "$SP"
wait_for 10 bash -c "[[ \$(awk '/TracerPid/{print \$2}' /proc/$PID/status) != 0 ]]" || fail "strace did not attach"
expect_fail "already traced" "already traced by $SP \(strace\)" "$FP" dump -t "$PID" -D "$WORK/x4"
kill "$SP"; wait "$SP" 2>/dev/null
wait_for 10 bash -c "[[ \$(awk '/TracerPid/{print \$2}' /proc/$PID/status) == 0 ]]" || fail "strace did not detach"
ct_verify t $((++n))

# An existing, non-empty snapshot directory.
mkdir -p "$WORK/exists" && echo x > "$WORK/exists/file"
expect_fail "existing snapshot" "already exists" "$FP" dump -t "$PID" -D "$WORK/exists"
[[ $(cat "$WORK/exists/file") == x && $(ls "$WORK/exists" | wc -l) == 1 ]] || fail "the existing directory was touched"

# An unwritable directory (read-only mount; root ignores permission bits).
mkdir -p "$WORK/ro"
mount -t tmpfs -o ro,size=1m none "$WORK/ro" || { echo "cannot mount tmpfs: skipping ro/full"; exit 77; }
trap 'umount "$WORK/ro" "$WORK/full" 2>/dev/null; cleanup' EXIT
expect_fail "read-only directory" "Read-only file system|cannot" "$FP" dump -t "$PID" -D "$WORK/ro/snap"
ct_verify t $((++n))

# A full disk: 1 MiB tmpfs for an 8 MiB process.
mkdir -p "$WORK/full"
mount -t tmpfs -o size=1m none "$WORK/full" || fail "cannot mount tmpfs"
expect_fail "full disk" "No space left|ENOSPC|space" "$FP" dump -t "$PID" -D "$WORK/full/snap" --compress none
[[ ! -e $WORK/full/snap/forkpoint.manifest ]] || fail "a manifest exists after a failed dump"
[[ -z $(ls -A "$WORK/full" | grep -v '\.failed\.log$') ]] || fail "the failed dump left files: $(ls -A "$WORK/full")"
ct_verify t $((++n))
# The same with --leave-running: the copy is taken, the write fails.
expect_fail "full disk, leave-running" "No space left|space" "$FP" dump -R -t "$PID" -D "$WORK/full/snap2" --compress none
ct_verify t $((++n))
umount "$WORK/full" "$WORK/ro"

# Started like a daemon would: stdio closed, every signal blocked, SIGCHLD
# ignored, no controlling terminal. It must still dump (and the result restore).
python3 - "$FP" "$PID" "$WORK/daemon" "$WORK/daemon.rc" <<'PY'
import os, signal, sys
fp, pid, d, rcfile = sys.argv[1:]
if os.fork() == 0:
    os.setsid()
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    os.closerange(0, 3)
    r = os.fork()
    if r == 0:
        os.execv(fp, [fp, "dump", "-t", pid, "-D", d, "--compress", "none"])
    # SIGCHLD is ignored: the child is reaped by the kernel; poll it instead
    import time
    while os.path.exists("/proc/%d" % r) and open("/proc/%d/stat" % r).read().split()[2] != "Z":
        time.sleep(0.01)
    os._exit(0)
os.wait()
PY
[[ -f $WORK/daemon/forkpoint.manifest ]] || fail "dump started like a daemon did not complete: $(cat "$WORK/daemon.failed.log" 2>/dev/null | tail -n 5)"
wait_gone "$PID"
criu_restore "$WORK/daemon"
ct_verify t $((++n))
echo ok
