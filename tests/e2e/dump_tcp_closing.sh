# TCP connections being closed (--tcp-established): ct_tcp --closing holds
# a connection whose client shut down while the server's window was full
# (client FIN_WAIT1), one shut down by the server (server FIN_WAIT2, client
# CLOSE_WAIT) and one by the client (the reverse). Dumped with
# --leave-running first (they run on, their states unchanged), then dumped
# and restored natively, restored by `criu restore --tcp-established` from
# forkpoint's image, and dumped by `criu dump` and restored natively: after
# each, the target checks every end's TCP state, that a shut-down end
# cannot send, that its peer reads all it sent and then EOF, and that the
# open direction carries bytes. Then LAST_ACK and CLOSING, made by dropping
# a connection's pure ACKs with iptables, are dumped and restored natively.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
command -v iptables-restore >/dev/null || { echo "no iptables-restore (Debian: iptables)"; exit 77; }

# states DIR: the TCP states of the image's connections, sorted
states() {
	crit decode -i "$1/files.img" | python3 -c 'import json, sys
print(" ".join(sorted(str(e["isk"]["state"]) for e in json.load(sys.stdin)["entries"]
      if e["type"] == "INETSK" and e["isk"]["state"] not in (7, 10))))'
}
locks() { (iptables -S; ip6tables -S) 2>/dev/null | grep -c 0xc114 || true; }
base=$(locks)
# ESTABLISHED 1, FIN_WAIT1 4, FIN_WAIT2 5, CLOSE_WAIT 8 (twice each but FIN_WAIT1/ESTABLISHED)
WANT="1 4 5 5 8 8"

# Each way on a fresh target, so that the CLOSE_WAIT ends still have their
# bytes and the FIN behind them unread in the image.
start_ct live "$T/ct_tcp" --closing
"$FP" dump -R --tcp-established -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log")"
[[ $(states "$WORK/r") == "$WANT" ]] || fail "the image holds states $(states "$WORK/r"), not $WANT"
[[ $(locks) == "$base" ]] || fail "--leave-running left lock rules"
ct_verify live 1
ct_verify live 2
kill -9 "$PID"; wait_gone "$PID"

start_ct nat "$T/ct_tcp" --closing
"$FP" dump --tcp-established -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log")"
wait_gone "$PID"
[[ $(states "$WORK/d") == "$WANT" ]] || fail "the image holds states $(states "$WORK/d"), not $WANT"
out=$("$FP" restore -D "$WORK/d" -d --engine native 2>&1) || fail "native restore: $out"
[[ $(locks) == "$base" ]] || fail "the native restore left lock rules"
ct_verify nat 1
ct_verify nat 2
kill -9 "$PID"; wait_gone "$PID"

if [[ -n $CRIU ]]; then
	start_ct crr "$T/ct_tcp" --closing
	"$FP" dump --tcp-established -t "$PID" -D "$WORK/dc" --compress none >/dev/null ||
		fail "dump: $(tail -n 3 "$WORK/dc.failed.log")"
	wait_gone "$PID"
	criu_run restore -D "$WORK/dc" -d -v4 -o restore.log --tcp-established ||
		fail "criu restore --tcp-established: $(grep Error "$WORK/dc/restore.log" | head -n 5)"
	[[ $(locks) == "$base" ]] || fail "criu restore left the lock rules of forkpoint's dump"
	ct_verify crr 1
	ct_verify crr 2
	kill -9 "$PID"; wait_gone "$PID"

	start_ct crd "$T/ct_tcp" --closing
	mkdir "$WORK/c"
	criu_run dump -t "$PID" -D "$WORK/c" -o dump.log --tcp-established ||
		fail "criu dump --tcp-established: $(grep Error "$WORK/c/dump.log" | head -n 3)"
	wait_gone "$PID"
	[[ $(states "$WORK/c") == "$WANT" ]] || fail "CRIU's image holds states $(states "$WORK/c"), not $WANT"
	out=$("$FP" restore -D "$WORK/c" -d --engine native 2>&1) || fail "native restore of CRIU's dump: $out"
	[[ $(locks) == "$base" ]] || fail "the native restore left the lock rules of CRIU's dump"
	ct_verify crd 1
	ct_verify crd 2
	kill -9 "$PID"; wait_gone "$PID"
else
	skip_part "criu restore of forkpoint's image, native restore of criu dump"
fi
echo ok
