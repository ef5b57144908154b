# A rollback in place keeps fds numbered 4096 and above as they are: fds
# 5000 and 5001 share one open file description (dup2), fd 6000 is a file
# of its own. After a snapshot the program moves their offsets, closes
# 6000 and opens another file on 7000; the rollback (in place) moves the
# offsets back, opens 6000 again and closes 7000, and 5000 and 5001 still
# share their description (kcmp), which they lost when every fd from 4096
# on was taken for closed and opened again.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n' >"$WORK/a"
printf 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n' >"$WORK/b"
cat >"$WORK/high.py" <<'PY'
import ctypes, os, resource, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
status, a, b = sys.argv[1:4]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fd = os.open(a, os.O_RDONLY)
os.dup2(fd, 5000)
os.dup2(fd, 5001)
os.close(fd)
fd = os.open(b, os.O_RDONLY)
os.dup2(fd, 6000)
os.close(fd)
os.lseek(5000, 3, os.SEEK_SET)
os.lseek(6000, 5, os.SEEK_SET)
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
def change(*_):
    os.lseek(5001, 9, os.SEEK_SET)
    os.close(6000)
    fd = os.open(b, os.O_RDONLY)
    os.dup2(fd, 7000)
    os.close(fd)
    say("changed")
def check(*_):
    me = os.getpid()
    bad = []
    if libc.syscall(312, me, me, 0, 5000, 5001) != 0:  # kcmp KCMP_FILE
        bad.append("5000 and 5001 do not share a description")
    for fd, path, pos in ((5000, a, 3), (5001, a, 3), (6000, b, 5)):
        try:
            got = (os.readlink("/proc/self/fd/%d" % fd), os.lseek(fd, 0, os.SEEK_CUR))
        except OSError as e:
            got = str(e)
        if got != (path, pos):
            bad.append("fd %d: %s" % (fd, got))
    if os.path.exists("/proc/self/fd/7000"):
        bad.append("fd 7000 is open")
    say("check " + ("ok" if not bad else "FAIL " + "; ".join(bad)))
signal.signal(signal.SIGUSR1, change)
signal.signal(signal.SIGUSR2, check)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
"$FP" run --detach --name hi -- python3 "$WORK/high.py" "$st" "$WORK/a" "$WORK/b" >/dev/null || fail "run"
track_pid "$(session_field hi helper_pid)"
wait_for 20 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
pid=$(session_field hi target_pid)
track_pid "$pid"
"$FP" snap hi s1 >/dev/null || fail "snap s1"
kill -USR1 "$pid"
wait_for 20 grep -q '^changed' "$st" || fail "the target did not change its fds"
"$FP" restore hi s1 --json >"$WORK/r.json" || fail "restore s1: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "restore s1 not in place: $(cat "$WORK/r.json")"
kill -USR2 "$pid"
wait_for 20 grep -q '^check ' "$st" || fail "no check answer"
line=$(grep '^check ' "$st" | tail -1)
[[ $line == "check ok" ]] || fail "after the rollback: $line"
"$FP" stop --kill hi >/dev/null 2>&1
echo ok
