# A rollback in place puts back SNAP's timers (helper/session/
# rollback_timers.c): the interval timers (setitimer, alarm), which no
# /proc file shows, are set to SNAP's at every rollback; the POSIX timers
# must be SNAP's own (else a full restore) and get SNAP's times. A Python
# program arms and disarms timers on commands (SIGUSR2) and reports their
# times. Rounds: an alarm armed since SNAP is gone after the rollback;
# timers SNAP had and that were disarmed since are armed again with SNAP's
# time left; a POSIX timer deleted and made again (another id) makes it a
# full restore; and a rollback that fails half way (FORKPOINT_FAULT)
# leaves the timers as they were before it.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

cat >"$WORK/tm.py" <<'PY'
import ctypes, os, signal, sys
status, work = sys.argv[1:3]
libc = ctypes.CDLL(None, use_errno=True)
class ts(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
class its(ctypes.Structure):
    _fields_ = [("interval", ts), ("value", ts)]
timer = ctypes.c_void_p(0)
made = False
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
def pset(sec):
    v = its(ts(0, 0), ts(sec, 0))
    assert libc.timer_settime(timer, 0, ctypes.byref(v), None) == 0
def cmd(*_):
    global made
    what = open(os.path.join(work, "cmd")).read().split()
    w = what[0]
    if w == "real":
        signal.setitimer(signal.ITIMER_REAL, float(what[1]), float(what[2]))
    elif w == "virt":
        signal.setitimer(signal.ITIMER_VIRTUAL, float(what[1]), 0)
    elif w == "pmake":
        assert libc.timer_create(1, None, ctypes.byref(timer)) == 0
        made = True
    elif w == "pset":
        pset(int(what[1]))
    elif w == "pdel":
        assert libc.timer_delete(timer) == 0
        made = False
    real = signal.getitimer(signal.ITIMER_REAL)
    virt = signal.getitimer(signal.ITIMER_VIRTUAL)
    p = "none"
    if made:
        v = its()
        assert libc.timer_gettime(timer, ctypes.byref(v)) == 0
        p = "%d:%.0f" % (timer.value or 0, v.value.s + v.value.ns / 1e9)
    say("%s real=%.0f/%.0f virt=%.0f posix=%s" % (w, real[0], real[1], virt[0], p))
signal.signal(signal.SIGALRM, lambda *_: say("alarm"))
signal.signal(signal.SIGVTALRM, lambda *_: say("vtalarm"))
signal.signal(signal.SIGUSR2, cmd)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY

start() { # NAME STATUS [ENV...]
	local name=$1 st=$2
	shift 2
	env "$@" "$FP" run --detach --name "$name" -- python3 "$WORK/tm.py" "$st" "$WORK" >/dev/null || fail "run $name"
	track_pid "$(session_field "$name" helper_pid)"
	wait_for 60 grep -qs '^ready ' "$st" || fail "$name not ready: $(cat "$st" 2>/dev/null)"
}
cmd() { # NAME STATUS CMD...: prints the timers after it
	local pid
	pid=$(session_field "$1" target_pid)
	track_pid "$pid"
	echo "${*:3}" >"$WORK/cmd"
	ask "$pid" USR2 "$2" "$3 " || fail "no answer to ${*:3}"
	grep "^$3 " "$2" | tail -n 1 | cut -d' ' -f2-
}
field() { # LINE KEY: the value of KEY=
	sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"
}
between() { # WHAT VALUE LOW HIGH
	awk -v v="$2" -v l="$3" -v h="$4" 'BEGIN { exit !(v >= l && v <= h) }' || fail "$1 is $2, not in [$3, $4]"
}
restore() { # NAME SNAP IN_PLACE
	"$FP" restore "$1" "$2" --json >"$WORK/r.json" || fail "restore $2: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == "$3" ]] || fail "restore $2: in_place is not $3: $(cat "$WORK/r.json")"
}

st=$WORK/status
start tm "$st"
"$FP" snap tm s1 >/dev/null || fail "snap s1"
l=$(cmd tm "$st" real 1000 0)
between "the alarm just armed" "$(field "$l" real | cut -d/ -f1)" 990 1000
restore tm s1 True
l=$(cmd tm "$st" look)
[[ $(field "$l" real) == 0/0 ]] || fail "an alarm armed after s1 is still armed after the rollback to s1: $l"

cmd tm "$st" real 500 7 >/dev/null
cmd tm "$st" virt 300 >/dev/null
cmd tm "$st" pmake >/dev/null
cmd tm "$st" pset 800 >/dev/null
"$FP" snap tm s2 >/dev/null || fail "snap s2"
cmd tm "$st" real 0 0 >/dev/null
cmd tm "$st" virt 0 >/dev/null
l=$(cmd tm "$st" pset 0)
[[ $(field "$l" real) == 0/0 && $(field "$l" virt) == 0 && $(field "$l" posix) == *:0 ]] || fail "not disarmed: $l"
restore tm s2 True
l=$(cmd tm "$st" look)
r=$(field "$l" real)
between "s2's ITIMER_REAL after the rollback" "${r%/*}" 450 500
[[ ${r#*/} == 7 ]] || fail "s2's ITIMER_REAL interval is not back: $l"
between "s2's ITIMER_VIRTUAL after the rollback" "$(field "$l" virt)" 290 300
p=$(field "$l" posix)
between "s2's POSIX timer after the rollback" "${p#*:}" 750 800

cmd tm "$st" pdel >/dev/null
l=$(cmd tm "$st" pmake)
[[ $(field "$l" posix) != "${p%:*}":* ]] || fail "the timer made again has s2's id: $l"
restore tm s2 False
grep -q "POSIX timer" "$WORK/r.json" || fail "the full restore does not say why: $(cat "$WORK/r.json")"
l=$(cmd tm "$st" look)
[[ $(field "$l" posix) == "${p%:*}":* ]] || fail "s2's POSIX timer is not back: $l"
between "s2's POSIX timer after the full restore" "$(field "$l" posix | cut -d: -f2)" 700 800
"$FP" stop --kill tm >/dev/null 2>&1

# a rollback that fails after its first page: the timers it had set are
# the live ones again
st2=$WORK/status2
start tf "$st2" FORKPOINT_FAULT=rollback-after-1-pages
"$FP" snap tf s1 >/dev/null || fail "snap s1 of tf"
cmd tf "$st2" real 900 0 >/dev/null
err=$("$FP" restore tf s1 --json 2>&1) && fail "a rollback failing on purpose succeeded: $err"
[[ $err == *"failing on purpose"* ]] || fail "message: $err"
l=$(cmd tf "$st2" look)
between "the alarm after the undone rollback" "$(field "$l" real | cut -d/ -f1)" 850 900
"$FP" stop --kill tf >/dev/null 2>&1
echo ok
