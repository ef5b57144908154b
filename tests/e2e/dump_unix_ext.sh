# A unix socket whose peer is outside the tree (--ext-unix-sk, CRIU's
# meaning): ct_extusk holds a datagram socket connected to $WORK/log.sock,
# which a process outside binds, as a program's socket to syslog's
# /dev/log. Without the flag the dump is refused (the target unharmed);
# with it the peer is written as CRIU writes it (an entry of its own with
# USK_EXTERN, type datagram, its name) and every way connects the socket to
# that name again: `dump --leave-running` with the original still passing,
# dump and native restore, `criu restore --ext-unix-sk` of forkpoint's
# image, `criu dump --ext-unix-sk` and native restore. After each, the
# target checks its socket's peer and sends a line, which the process
# outside must receive. A stream connection to a listener outside is
# refused, even with the flag (half a connection; CRIU refuses it too).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

LOG=$WORK/log.sock
# outside TYPE PATH OUT: a process outside the tree bound at PATH (dgram, or
# a stream listener) that appends every line it gets to OUT
outside() {
	python3 - "$@" <<'PY' &
import os, socket, sys
kind, path, out = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM if kind == "dgram" else socket.SOCK_STREAM)
s.bind(path)
if kind == "stream":
    s.listen(1)
open(out + ".ready", "w").close()
if kind == "stream":
    s, _ = s.accept()
with open(out, "ab", buffering=0) as f:
    while True:
        m = s.recv(4096)
        if not m:
            break
        f.write(m)
PY
	track_pid $!
	disown
	wait_for 20 test -e "$3.ready" || fail "the process outside did not bind $2"
}
# got N: the process outside received line N of the current target's pid
got() { wait_for 30 grep -q "^ct_extusk $(awk '/^ready /{print $2; exit}' "$WORK/$1.st") $2\$" "$WORK/log.txt" ||
	fail "$1: the process outside did not get message $2: $(tail -n 3 "$WORK/log.txt")"; }
entries() { # DIR: the image's unix socket entries: "type state uflags name" of the external one
	crit decode -i "$1/files.img" | python3 -c 'import json, sys
es = [e["usk"] for e in json.load(sys.stdin)["entries"] if e["type"] == "UNIXSK"]
ext = [u for u in es if u["uflags"]]
assert len(es) == 2 and len(ext) == 1, es
x = ext[0]
mine = [u for u in es if not u["uflags"]][0]
assert mine["peer"] == x["ino"] and not x["peer"], es
print(x["type"], x["state"], x["uflags"], x["name"])'
}
WANT="2 10 1 $LOG=00" # SOCK_DGRAM, TCP_LISTEN, USK_EXTERN

outside dgram "$LOG" "$WORK/log.txt"
start_ct ext "$T/ct_extusk" --dgram="$LOG"
ct_verify ext 1
got ext 1
out=$("$FP" dump -t "$PID" -D "$WORK/no" 2>&1) && fail "a dump without --ext-unix-sk was not refused"
[[ $out == *"--ext-unix-sk"* ]] || fail "the refusal does not name --ext-unix-sk: $out"
ct_verify ext 2
got ext 2
"$FP" dump -R --ext-unix-sk -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log")"
[[ $(entries "$WORK/r") == "$WANT" ]] || fail "the image's entries: $(entries "$WORK/r"), not $WANT"
ct_verify ext 3
got ext 3
"$FP" dump --ext-unix-sk -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log")"
wait_gone "$PID"
out=$("$FP" restore -D "$WORK/d" -d --engine native 2>&1) || fail "native restore: $out"
ct_verify ext 4
got ext 4
kill -9 "$PID"; wait_gone "$PID"

if [[ -n $CRIU ]]; then
	start_ct crr "$T/ct_extusk" --dgram="$LOG"
	"$FP" dump --ext-unix-sk --compress none -t "$PID" -D "$WORK/c1" >/dev/null || fail "dump: $(tail -n 3 "$WORK/c1.failed.log")"
	wait_gone "$PID"
	criu_run restore -D "$WORK/c1" -d -v4 -o restore.log --ext-unix-sk ||
		fail "criu restore --ext-unix-sk: $(grep Error "$WORK/c1/restore.log" | head -n 5)"
	ct_verify crr 1
	got crr 1
	mkdir "$WORK/c2"
	criu_run dump -t "$PID" -D "$WORK/c2" -o dump.log --ext-unix-sk ||
		fail "criu dump --ext-unix-sk: $(grep Error "$WORK/c2/dump.log" | head -n 3)"
	wait_gone "$PID"
	[[ $(entries "$WORK/c2") == "$WANT" ]] || fail "CRIU's image's entries: $(entries "$WORK/c2"), not $WANT"
	out=$("$FP" restore -D "$WORK/c2" -d --engine native 2>&1) || fail "native restore of CRIU's image: $out"
	ct_verify crr 2
	got crr 2
	kill -9 "$PID"; wait_gone "$PID"
else
	skip_part "criu restore of forkpoint's image, native restore of criu dump"
fi

# gone: the restore names the cause
start_ct gone "$T/ct_extusk" --dgram="$LOG"
"$FP" dump --ext-unix-sk -t "$PID" -D "$WORK/g" >/dev/null || fail "dump: $(tail -n 3 "$WORK/g.failed.log")"
wait_gone "$PID"
mv "$LOG" "$LOG.away"
out=$("$FP" restore -D "$WORK/g" -d --engine native 2>&1) && fail "a restore without the socket outside did not fail"
[[ $out == *"outside the restored tree"*"start the program that binds it"* ]] || fail "the failure does not say why: $out"
mv "$LOG.away" "$LOG"

outside stream "$WORK/srv.sock" "$WORK/srv.txt"
start_ct st "$T/ct_extusk" --stream="$WORK/srv.sock"
out=$("$FP" dump --ext-unix-sk -t "$PID" -D "$WORK/s" 2>&1) && fail "half a stream connection was not refused"
[[ $out == *"stream connection"*"half a connection"* ]] || fail "the refusal does not say why: $out"
ct_verify st 1
echo ok
