# Fds that share an open file description (dup, fork) share it again after
# a rollback in place, as at SNAP: a rollback that opens a file again (each
# fd on a workspace file, whose overlay goes back to SNAP's; a regular file
# closed since) makes one description per group of SNAP's sharing fds, and
# gives it to the others of the group (dup3 in the same process,
# pidfd_getfd across processes), not one each: two fds with their own
# offsets would write over each other where SNAP's appended. A Python
# program opens a file in its workspace and one outside it, dups each
# twice (a, b, c), opens each once more (d) and forks a child that keeps
# them all; it reports for each file whether a and b, a and c, a and d, and
# a in it and in the child are one description (kcmp), and the offset. A snapshot (which moves the fds on
# workspace files to the workspace's new layer) must leave it as it was;
# each round: snapshot, change (write through a, close c, reopen b as a
# description of its own, dup2 a onto d), roll back; the report must be
# SNAP's again. A change to the sharing of fds that stay outside the
# workspace makes it a full restore that says so. A rollback that fails
# half way leaves the live descriptions as they were.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
ws=$WORK/ws
mkdir -p "$ws" "$WORK/out"
cat >"$WORK/sh.py" <<'PY'
import ctypes, os, signal, sys
status, work, ws = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
files = {}
for name, d in (("ws", ws), ("out", os.path.join(work, "out"))):
    files[name + "_path"] = os.path.join(d, "log")
    a = os.open(os.path.join(d, "log"), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(a, b"start\n")
    files[name] = [a, os.dup(a), os.dup(a), os.open(os.path.join(d, "log"), os.O_RDONLY)]  # d: its own
me = os.getpid()
kid = os.fork()
if kid == 0:
    while True:
        signal.pause()
own = [os.open(files["out_path"], os.O_RDONLY) for _ in range(2)]  # the parent's alone, apart
def same(p1, f1, p2, f2):
    return int(libc.syscall(312, p1, p2, 0, f1, f2) == 0)  # kcmp(KCMP_FILE)
def act(*_):
    what, name = open(os.path.join(work, "act")).read().split()
    a, b, c, d = files[name]
    if what == "write":
        os.write(a, b"x" * 10)
    elif what == "closec":
        os.close(c)
    elif what == "split":  # b: the same file, a description of its own
        os.close(b)
        assert os.open(files[name + "_path"], os.O_RDWR) == b
    elif what == "join":  # d: a's description now
        os.dup2(a, d)
    elif what == "join2":  # two of the parent's own, apart at SNAP: one now
        os.dup2(own[0], own[1])
    say("did " + what)
def look(*_):
    out = []
    for name in ("out", "ws"):
        a, b, c, d = files[name]
        out.append("%s: ab=%d ac=%d ad=%d kid=%d pos=%d" % (name, same(me, a, me, b), same(me, a, me, c),
                   same(me, a, me, d), same(me, a, kid, a), os.lseek(a, 0, os.SEEK_CUR)))
    out.append("own=%d" % same(me, own[0], me, own[1]))
    say("look " + "; ".join(out))
signal.signal(signal.SIGUSR1, act)
signal.signal(signal.SIGUSR2, look)
say("ready %d %d" % (me, kid))
while True:
    signal.pause()
PY
"$FP" run --detach --name sf --workdir "$ws" -- python3 "$WORK/sh.py" "$st" "$WORK" "$ws" >/dev/null || fail "run"
track_pid "$(session_field sf helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
read -r _ _ kid < <(grep '^ready ' "$st")
track_pid "$kid"
want="look out: ab=1 ac=1 ad=0 kid=1 pos=6; ws: ab=1 ac=1 ad=0 kid=1 pos=6; own=0"
[[ $(sig_look sf) == "$want" ]] || fail "at the start: $(sig_look sf)"

# a snapshot moves the workspace's fds to its new layer: shared ones stay shared
"$FP" snap sf s0 >/dev/null || fail "snap s0"
[[ $(sig_look sf) == "$want" ]] || fail "after a snapshot: $(sig_look sf)"

why="description"
sig_round sf "$why" "write ws" True
sig_round sf "$why" "write out" True
sig_round sf "$why" "closec ws" True
sig_round sf "$why" "closec out" True
# fds that stay but no longer share, or share now and did not: a full
# restore that says so (the workspace's are opened again, from SNAP's)
sig_round sf "$why" "split out" False
sig_round sf "$why" "join out" False
sig_round sf "$why" "join2 out" False
sig_round sf "$why" "split ws" True
sig_round sf "$why" "join ws" True
[[ $(sig_look sf) == "$want" ]] || fail "at the end: $(sig_look sf)"
"$FP" stop --kill sf >/dev/null 2>&1

# A rollback that fails half way (after its first page) brings back the
# live fds it had replaced as they were: the descriptions themselves (kept
# at spare fds until the commit), still shared with the dups and the
# child, at their offsets; not the workspace files opened again.
rm -f "$st"
FORKPOINT_FAULT=rollback-after-1-pages "$FP" run --detach --name sff --workdir "$ws" -- \
	python3 "$WORK/sh.py" "$st" "$WORK" "$ws" >/dev/null || fail "run sff"
track_pid "$(session_field sff helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target sff not ready: $(cat "$st" 2>/dev/null)"
read -r _ _ kid < <(grep '^ready ' "$st")
track_pid "$kid"
"$FP" snap sff f1 >/dev/null || fail "snap f1"
sig_act sff "write ws"
sig_act sff "write out"
before=$(sig_look sff)
err=$("$FP" restore sff f1 --json 2>&1) && fail "a rollback failing on purpose succeeded: $err"
[[ $err == *"failing on purpose"* ]] || fail "the failed rollback: $err"
[[ $(sig_look sff) == "$before" ]] || fail "after the failed rollback: $(sig_look sff), before it: $before"
n=$(ls "/proc/$(session_field sff target_pid)/fd" | wc -l)
sig_act sff "write ws" # the fds work on: a write through a moves them all
[[ $(sig_look sff) == *"ws: ab=1 ac=1 ad=0 kid=1 pos=26"* ]] || fail "writing after the failed rollback: $(sig_look sff)"
"$FP" restore sff f1 --json >"$WORK/r.json" || fail "restore without the fault: $(cat "$WORK/r.json")"
[[ $(json_field "$WORK/r.json" in_place) == True ]] || fail "not in place: $(cat "$WORK/r.json")"
[[ $(sig_look sff) == "$want" ]] || fail "after the rollback: $(sig_look sff)"
[[ $(ls "/proc/$(session_field sff target_pid)/fd" | wc -l) == "$n" ]] || fail "the fds left: $(ls -l "/proc/$(session_field sff target_pid)/fd")"
"$FP" stop --kill sff >/dev/null 2>&1
echo ok
