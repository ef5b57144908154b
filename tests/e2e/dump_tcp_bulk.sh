# TCP queues of megabytes, and urgent data (--tcp-established): ct_tcp
# --bulk holds a connection with several MiB waiting in the client's send
# queue and in the server's receive queue, and 2 MiB the client has not
# read; with --oob an urgent byte (MSG_OOB) sits in the middle of those,
# and with --sndoob one the client sent sits unsent in its send queue (the
# server's window is full), where the dump finds it with a BPF iterator.
# Dumped with --leave-running (it runs on), dumped and restored natively:
# every byte comes back in place and the urgent byte is urgent again. The
# same with the client reading urgent data inline (--oobinline,
# SO_OOBINLINE): the byte in its place in the stream, at the urgent mark
# (SIOCATMARK), the option still set. CRIU
# has no urgent data (it would restore the byte inline), so the CRIU ways
# run without it: forkpoint's image restored by `criu restore`, and
# `criu dump` restored natively.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
source "$(dirname "$0")/tcp_common.inc"

# queues DIR: "inq outq" of each connection, largest first; checks several MiB
queues() {
	python3 - "$1" <<'PY'
import glob, json, subprocess, sys
qs = []
for f in glob.glob(sys.argv[1] + "/tcp-stream-*.img"):
    e = json.loads(subprocess.check_output(["crit", "decode", "-i", f]))["entries"][0]
    qs.append((e["inq_len"], e["outq_len"]))
assert len(qs) == 2, qs
big = 2 << 20
# MiB queued each way: in the receiver's queue, or still in the sender's
# (bytes the last verification queued may be in flight when the dump stops
# the connection: 2 MiB each way in total, not 2 MiB in one queue)
(a_in, a_out), (b_in, b_out) = qs
assert min(a_in + b_out, b_in + a_out) >= big, qs
print(" ".join("%d/%d" % q for q in sorted(qs, reverse=True)))
PY
}

start_ct oob "$T/ct_tcp" --bulk --oob --sndoob
"$FP" dump -R --tcp-established -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log")"
q=$(queues "$WORK/r") || fail "the image's queues: $q"
echo "dump -R: queues (receive/send bytes) $q"
ct_verify oob 1
tcp_dump "$WORK/d"
q=$(queues "$WORK/d") || fail "the image's queues: $q"
echo "dump: queues (receive/send bytes) $q"
grep -q "urgent byte sent at [0-9]" "$WORK/d/dump.log" || fail "the dump did not find the urgent byte in the send queue"
tcp_native "$WORK/d"
ct_verify oob 2
ct_verify oob 3
kill -9 "$PID"; wait_gone "$PID"

start_ct inl "$T/ct_tcp" --bulk --oobinline
"$FP" dump -R --tcp-established -t "$PID" -D "$WORK/ri" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/ri.failed.log")"
ct_verify inl 1
tcp_dump "$WORK/di"
tcp_native "$WORK/di"
ct_verify inl 2
ct_verify inl 3
kill -9 "$PID"; wait_gone "$PID"

if [[ -n $CRIU ]]; then
	start_ct crr "$T/ct_tcp" --bulk
	tcp_dump "$WORK/c1" --compress none
	queues "$WORK/c1" >/dev/null || fail "the image's queues"
	criu_tcp_restore "$WORK/c1"
	ct_verify crr 1
	criu_tcp_dump "$WORK/c2"
	q=$(queues "$WORK/c2") || fail "CRIU's image's queues: $q"
	tcp_native "$WORK/c2"
	ct_verify crr 2
	kill -9 "$PID"; wait_gone "$PID"
else
	skip_part "criu restore of forkpoint's image, native restore of criu dump"
fi
echo ok
