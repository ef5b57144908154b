# The shim's fd table is a check, never a second source of truth: a program
# under the shim opens a file with a raw openat system call (past the
# shim's wrappers, so the table never hears of it). A snapshot then says the
# table and /proc disagree (snap --json: shim_disagree, shim_note; dump.log)
# and keeps what /proc says: the fd is in the images, and the session
# restored from them has it, at its offset.
source "$(dirname "$0")/../lib.sh"

st=$WORK/raw.st
echo "line one of the file read past the shim" >"$WORK/data"
cat >"$WORK/raw.py" <<'PY'
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(257, -100, sys.argv[2].encode(), 0)  # openat(AT_FDCWD, path, O_RDONLY)
assert fd >= 0, ctypes.get_errno()
os.lseek(fd, 5, os.SEEK_SET)
open(sys.argv[1], "w").write("ready %d %d\n" % (os.getpid(), fd))
while True:
    time.sleep(1)
PY
"$FP" run --detach --name raw -- python3 "$WORK/raw.py" "$st" "$WORK/data" >/dev/null || fail "run"
track_pid "$(session_field raw helper_pid)"
wait_for 20 grep -q '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
read -r _ pid fd <"$st"
track_pid "$pid"
grep -q libforkpoint-preload "/proc/$pid/maps" || fail "the shim is not loaded"

"$FP" snap raw s1 --json >"$WORK/s1.json" || fail "snap: $(cat "$WORK/s1.json")"
python3 - "$WORK/s1.json" "$fd" <<'PY' || fail "the snapshot does not report the disagreement: $(cat "$WORK/s1.json")"
import json, sys
d, fd = json.load(open(sys.argv[1])), sys.argv[2]
assert d["shim_checked"] is True, d
assert d["shim_disagree"] >= 1, d
assert d["shim_note"] == "fd %s is open but not in the table" % fd, d
PY
S=$FORKPOINT_HOME/sessions/raw/snapshots/s1
grep -q "shim table and /proc disagree (/proc kept): fd $fd is open but not in the table" "$S/dump.log" ||
	fail "dump.log does not say so"

"$FP" restore raw s1 >/dev/null || fail "restore"
pid=$(session_field raw target_pid)
track_pid "$pid"
[[ $(readlink "/proc/$pid/fd/$fd") == "$WORK/data" ]] || fail "fd $fd not restored: $(ls -l /proc/$pid/fd)"
grep -q '^pos:[[:space:]]*5$' "/proc/$pid/fdinfo/$fd" || fail "fd $fd offset: $(cat /proc/$pid/fdinfo/$fd)"
"$FP" stop --kill raw >/dev/null 2>&1
echo ok
