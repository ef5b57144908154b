# A rollback in place leaves pending signals as they are, so they must be
# the ones SNAP had (helper/session/rollback_diff.c, diff_signals): a
# signal that arrived since SNAP would otherwise be delivered after the
# rollback, and one SNAP had but taken since would be lost. A Python
# program blocks SIGUSR1 and answers commands on SIGUSR2. Rounds: SIGUSR1
# sent after the snapshot (pending now, not at SNAP: a full restore, and
# none pending after it); SIGUSR1 pending at the snapshot and taken since
# (a full restore, which queues SNAP's again); pending at the snapshot and
# still (in place). After each, the program reports its pending set.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/sig.py" <<'PY'
import os, signal, sys
status, work = sys.argv[1:3]
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
def cmd(*_):
    what = open(os.path.join(work, "cmd")).read().strip()
    if what == "take":
        signal.sigtimedwait([signal.SIGUSR1], 0)
    pend = sorted(s.name for s in signal.sigpending())
    say("%s %s" % (what, ",".join(pend) or "none"))
signal.signal(signal.SIGUSR2, cmd)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY
"$FP" run --detach --name sg -- python3 "$WORK/sig.py" "$st" "$WORK" >/dev/null || fail "run"
track_pid "$(session_field sg helper_pid)"
wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"

cmd() { # CMD: prints the pending set after it
	local pid
	pid=$(session_field sg target_pid)
	track_pid "$pid"
	echo "$1" >"$WORK/cmd"
	ask "$pid" USR2 "$st" "$1 " || fail "no answer to $1"
	grep "^$1 " "$st" | tail -n 1 | cut -d' ' -f2
}
restore() { # SNAP IN_PLACE
	"$FP" restore sg "$1" --json >"$WORK/r.json" || fail "restore $1: $(cat "$WORK/r.json")"
	[[ $(json_field "$WORK/r.json" in_place) == "$2" ]] || fail "restore $1: in_place is not $2: $(cat "$WORK/r.json")"
	if [[ $2 == False ]]; then
		grep -q "signals pending" "$WORK/r.json" || fail "restore $1 does not say why: $(cat "$WORK/r.json")"
	fi
}

"$FP" snap sg s1 >/dev/null || fail "snap s1"
kill -USR1 "$(session_field sg target_pid)"
[[ $(cmd look) == SIGUSR1 ]] || fail "SIGUSR1 is not pending after it was sent"
restore s1 False
[[ $(cmd look) == none ]] || fail "a signal sent after s1 is pending after the rollback to s1"

kill -USR1 "$(session_field sg target_pid)"
[[ $(cmd look) == SIGUSR1 ]] || fail "SIGUSR1 is not pending after it was sent"
"$FP" snap sg s2 >/dev/null || fail "snap s2"
[[ $(cmd take) == none ]] || fail "SIGUSR1 could not be taken"
restore s2 False
[[ $(cmd look) == SIGUSR1 ]] || fail "s2's pending SIGUSR1 is not pending after the rollback to s2"

"$FP" snap sg s3 >/dev/null || fail "snap s3"
restore s3 True
[[ $(cmd look) == SIGUSR1 ]] || fail "s3's pending SIGUSR1 is gone after the rollback in place"
"$FP" stop --kill sg >/dev/null 2>&1
echo ok
