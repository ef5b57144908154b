# A rollback in place leaves event fds where they are, so what they hold
# must be SNAP's (helper/session/rollback_evfd.c): an eventfd's count, an
# epoll's watches, a signalfd's mask, a timerfd idle, an inotify's watches.
# A Python program holds one of each and changes one per command
# (SIGUSR1); it reports what the kernel says of each (its fdinfo) on
# SIGUSR2. Each round: snapshot, change, roll back; a change makes the
# rollback a full restore that says why, and after it the report must be
# SNAP's again. Unchanged ones (SNAP with an eventfd count of 5 and three
# epoll watches) stay in place.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
mkdir -p "$WORK/watched"
cat >"$WORK/ev.py" <<'PY'
import ctypes, os, select, signal, socket, sys
status, work, watched = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
efd = os.eventfd(0, os.EFD_NONBLOCK)
r, w = os.pipe()
a, b = socket.socketpair()
ep = select.epoll()
ep.register(r, select.EPOLLIN)
ep.register(efd, select.EPOLLIN)
class sigset(ctypes.Structure):
    _fields_ = [("v", ctypes.c_ulong * 16)]
mask = sigset()
mask.v[0] = 1 << (signal.SIGURG - 1)
sfd = libc.signalfd(-1, ctypes.byref(mask), os.O_NONBLOCK)
tfd = libc.timerfd_create(1, os.O_NONBLOCK)
ify = libc.inotify_init1(os.O_NONBLOCK)
libc.inotify_add_watch(ify, watched.encode(), 0x100)  # IN_CREATE
assert min(sfd, tfd, ify) >= 0
class ts(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
class its(ctypes.Structure):
    _fields_ = [("interval", ts), ("value", ts)]
junk = bytearray(1 << 20)
def info(fd, keys):
    out = []
    for line in open("/proc/self/fdinfo/%d" % fd):
        k = line.split(":")[0]
        if k in keys:
            v = line.split(":", 1)[1].split()
            if k == "inotify wd":
                v = v[1:4]  # ino, sdev, mask: the wd a restore gives may differ
            elif k == "tfd":
                v = v[:5]   # fd, events, data
            out.append(k + "=" + "/".join(v))
    return ",".join(sorted(out))
def act(*_):
    what = open(os.path.join(work, "act")).read().strip()
    if what == "count5":
        os.eventfd_write(efd, 5)
    elif what == "count":
        os.eventfd_write(efd, 1)
    elif what == "unwatch":
        ep.unregister(r)
    elif what == "watch":
        ep.register(a, select.EPOLLIN)
    elif what == "sigmask":
        m = sigset()
        m.v[0] = 1 << (signal.SIGWINCH - 1)
        assert libc.signalfd(sfd, ctypes.byref(m), 0) == sfd
    elif what == "arm":
        v = its(ts(0, 0), ts(1000, 0))
        assert libc.timerfd_settime(tfd, 0, ctypes.byref(v), None) == 0
    elif what == "inotify":
        assert libc.inotify_add_watch(ify, b"/tmp", 0x200) >= 0  # IN_DELETE
    elif what == "memory":
        junk[::4096] = b"m" * len(junk[::4096])
    say("did " + what)
def look(*_):
    say("look efd[%s] ep[%s] sfd[%s] tfd[%s] ify[%s]" % (
        info(efd, ("eventfd-count",)), info(ep.fileno(), ("tfd",)), info(sfd, ("sigmask",)),
        info(tfd, ("ticks", "it_value")), info(ify, ("inotify wd",))))
signal.signal(signal.SIGUSR1, act)
signal.signal(signal.SIGUSR2, look)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
"$FP" run --detach --name ev -- python3 "$WORK/ev.py" "$st" "$WORK" "$WORK/watched" >/dev/null || fail "run"
track_pid "$(session_field ev helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"

why="eventfd\|epoll\|signalfd\|timerfd\|inotify"
sig_act ev count5
sig_round ev "$why" memory True
sig_round ev "$why" count False
sig_round ev "$why" unwatch False
sig_round ev "$why" watch False
sig_round ev "$why" sigmask False
sig_round ev "$why" arm False
sig_round ev "$why" inotify False
sig_round ev "$why" memory True
"$FP" stop --kill ev >/dev/null 2>&1
echo ok
