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
# a connection's pure ACKs with iptables (with a connection that ended, fd
# CLOSE, its port held by the kernel's TIME_WAIT), the same three ways: the
# native restore, `criu restore` of forkpoint's image, `criu dump` restored
# natively.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
source "$(dirname "$0")/tcp_common.inc"

# states DIR: the TCP states of the image's connections, sorted
states() {
	crit decode -i "$1/files.img" | python3 -c 'import json, sys
print(" ".join(sorted(str(e["isk"]["state"]) for e in json.load(sys.stdin)["entries"]
      if e["type"] == "INETSK" and e["isk"]["state"] not in (7, 10))))'
}
# locks DIR: the lock rules of the image's connections (other tests on the
# machine may hold locks of their own)
locks() { rules $(ports "$1"); }
# ESTABLISHED 1, FIN_WAIT1 4, FIN_WAIT2 5, CLOSE_WAIT 8 (twice each but FIN_WAIT1/ESTABLISHED)
WANT="1 4 5 5 8 8"

# Each way on a fresh target, so that the CLOSE_WAIT ends still have their
# bytes and the FIN behind them unread in the image.
start_ct live "$T/ct_tcp" --closing
"$FP" dump -R --tcp-established -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log")"
[[ $(states "$WORK/r") == "$WANT" ]] || fail "the image holds states $(states "$WORK/r"), not $WANT"
[[ $(locks "$WORK/r") == 0 ]] || fail "--leave-running left lock rules"
ct_verify live 1
ct_verify live 2
kill -9 "$PID"; wait_gone "$PID"

# held_rules -I|-D: the test's own DROP rules, HELD (see start_held). In
# INPUT, so that a dropped segment counts as sent and lost in transit: a
# drop in OUTPUT fails the sender's transmission (EPERM), and TCP then
# holds a FIN unsent behind its zero-window probe timer, whose back-off
# reached 90 s under load, longer than the target waits once the rule is
# gone.
held_rules() {
	local op=$1 r
	for r in "${HELD[@]}"; do
		# shellcheck disable=SC2086
		iptables -w "$op" INPUT $r -m comment --comment fp-test-held -j DROP 2>/dev/null || [[ $op == -D ]] ||
			fail "iptables $op INPUT $r"
	done
}
# way NAME START WANT DUMPER RESTORER: a fresh target (START NAME starts
# it), dumped, restored and checked one way
way() {
	local name=$1 d=$WORK/$1 want=$3 n
	"$2" "$name"
	n=$(grep -c '^verify ' "$WORK/$name.st")
	"$4" "$d"
	held_rules -D
	[[ $(states "$d") == "$want" ]] || fail "$name: the image holds states $(states "$d"), not $want"
	"$5" "$d"
	[[ $(locks "$d") == 0 ]] || fail "$name: the restore left lock rules"
	ct_verify "$name" $((n + 1))
	ct_verify "$name" $((n + 2))
	kill -9 "$PID"; wait_gone "$PID"
}
start_closing() { start_ct "$1" "$T/ct_tcp" --closing; }
tcp_dump_plain() { tcp_dump "$1" --compress none; } # for criu restore
# three_ways PREFIX START WANT: native restore, `criu restore` of
# forkpoint's image, `criu dump` restored natively
three_ways() {
	way "${1}nat" "$2" "$3" tcp_dump tcp_native
	if [[ -n $CRIU ]]; then
		way "${1}crr" "$2" "$3" tcp_dump_plain criu_tcp_restore
		way "${1}crd" "$2" "$3" criu_tcp_dump tcp_native
	else
		skip_part "$2: criu restore of forkpoint's image, native restore of criu dump"
	fi
}
HELD=()
three_ways "" start_closing "$WANT"

# LAST_ACK and CLOSING last only while some segments are dropped (see
# ct_tcp.c, --held): the test's own rules (by port, in INPUT) hold them
# until the dump, and are gone before the restore, which must bring the
# states back by itself.
HELD=()
trap 'held_rules -D; cleanup' EXIT
start_held() { # NAME
	local st=$WORK/$1.st
	rm -f "$st" "$st.go1" "$st.go2"
	(cd "$WORK" && exec setsid "$T/ct_tcp" "$st" --closing --held --quiet-stdio </dev/null >/dev/null 2>&1 &)
	wait_for 20 grep -q '^info hold ' "$st" || fail "$1 did not get to its held connections: $(cat "$st")"
	read -r _ _ dc ds ec es < <(grep '^info hold ' "$st")
	pure_ack="-m length --length 0:80 --tcp-flags ALL ACK"
	HELD=("-p tcp --sport $dc --dport $ds $pure_ack" "-p tcp --sport $ec --dport $es" "-p tcp --sport $es --dport $ec")
	held_rules -I
	touch "$st.go1"
	wait_for 20 bash -c "[[ \$(ss -Htn state fin-wait-1 '( sport = :$ec )' | wc -l) == 1 && \$(ss -Htn state fin-wait-1 '( sport = :$es )' | wc -l) == 1 ]]" ||
		fail "E did not reach FIN_WAIT1 at both ends: $(ss -tn "( sport = :$ec or sport = :$es )")"
	HELD=("${HELD[2]}")
	held_rules -D # the server's segments of E pass from now on
	HELD=("-p tcp --sport $dc --dport $ds $pure_ack" "-p tcp --sport $ec --dport $es")
	touch "$st.go2"
	wait_for 60 grep -q '^ready ' "$st" ||
		fail "$1 did not get ready: $(tail -n 2 "$st")
$(ss -tnoi "( sport = :$ec or sport = :$es )")
$(iptables -S INPUT; iptables -S OUTPUT; nft list tables 2>&1)"
	PID=$(awk '/^ready /{print $2; exit}' "$st")
	track_pid "$PID"
	ct_verify "$1" 1
}
# the closing target's states, with D's LAST_ACK 9 (its client CLOSE, left out) and E's
# CLOSING 11 and FIN_WAIT1 4
three_ways h start_held "1 11 4 4 5 5 8 8 9"
echo ok
