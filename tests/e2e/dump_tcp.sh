# Established TCP connections (--tcp-established, TCP repair mode): ct_tcp
# with two connections inside the tree (127.0.0.1 with bytes never sent in
# a send queue, and ::1), unread bytes queued both ways, is refused without
# the flag, dumped with --leave-running (it runs on and the network lock is
# lifted), dumped, restored by `criu restore --tcp-established`, dumped
# again and restored natively, dumped by `criu dump --tcp-established` and
# restored natively, and its streams carry on byte-exact. Then a
# connection to a peer outside the tree, which sends while its other end is
# dumped: nothing is reset, the bytes arrive after the restore. Then a
# session (snap --tcp-established, restore SESSION SNAP), and redis with a
# client of its tree.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
source "$(dirname "$0")/tcp_common.inc"

start_ct tcp "$T/ct_tcp"
ct_verify tcp 1
rc=0; err=$("$FP" dump -t "$PID" -D "$WORK/no" 2>&1) || rc=$?
((rc != 0)) || fail "an established TCP connection was dumped without --tcp-established"
[[ $err == *"--tcp-established"* ]] || fail "the refusal does not name --tcp-established: $err"
ct_verify tcp 2

"$FP" dump -R --tcp-established -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log")"
P=$(ports "$WORK/r")
[[ $(wc -w <<<"$P") == 4 ]] || fail "expected 4 established sockets in the image, got: $P"
[[ $(rules $P) == 0 ]] || fail "--leave-running left lock rules: $(iptables -S | grep 0xc114)"
ct_verify tcp 3

"$FP" dump --tcp-established -t "$PID" -D "$WORK/d" --compress none >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log")"
wait_gone "$PID"
[[ $(rules $P) == 8 ]] || fail "the dumped connections are not locked: $(rules $P) rules"
python3 - "$WORK/d" <<'PY' || fail "tcp-stream images"
import glob, json, subprocess, sys
qs = []
for f in glob.glob(sys.argv[1] + "/tcp-stream-*.img"):
    e = json.loads(subprocess.check_output(["crit", "decode", "-i", f]))["entries"][0]
    qs.append((e["inq_len"], e["outq_len"], e.get("unsq_len", 0)))
assert len(qs) == 4, qs
assert all(q[0] > 0 for q in qs), qs          # unread bytes in every receive queue
assert any(q[2] > 0 for q in qs), qs          # bytes never sent
PY
if [[ -n $CRIU ]]; then
	criu_run restore -D "$WORK/d" -d -v4 -o restore.log --tcp-established ||
		fail "criu restore --tcp-established: $(grep Error "$WORK/d/restore.log" | head -n 5)"
	[[ $(rules $P) == 0 ]] || fail "criu restore left the lock rules of forkpoint's dump"
	ct_verify tcp 4
	# CRIU's restore dumped again by forkpoint, for the native restore
	"$FP" dump --tcp-established -t "$PID" -D "$WORK/d2" >/dev/null || fail "dump after criu: $(tail -n 3 "$WORK/d2.failed.log")"
	wait_gone "$PID"
	n=5
else
	skip_part "criu restore --tcp-established of forkpoint's image"
	cp -a "$WORK/d" "$WORK/d2"
	n=4
fi
[[ $(rules $P) == 8 ]] || fail "the dumped connections are not locked: $(rules $P) rules"
out=$("$FP" restore -D "$WORK/d2" -d --engine native 2>&1) || fail "native restore: $out"
[[ $(rules $P) == 0 ]] || fail "the native restore left lock rules"
ct_verify tcp $n
if [[ -n $CRIU ]]; then
	# CRIU's own dump, restored natively
	mkdir "$WORK/c"
	criu_run dump -t "$PID" -D "$WORK/c" -o dump.log --tcp-established ||
		fail "criu dump --tcp-established: $(grep Error "$WORK/c/dump.log" | head -n 3)"
	wait_gone "$PID"
	out=$("$FP" restore -D "$WORK/c" -d --engine native 2>&1) || fail "native restore of CRIU's dump: $out"
	[[ $(rules $P) == 0 ]] || fail "the native restore left the lock rules of CRIU's dump"
	ct_verify tcp $((n + 1))
else
	skip_part "native restore of criu dump --tcp-established"
fi
kill -9 "$PID"; wait_gone "$PID"

# One end outside the tree: the peer sends while the other end is dumped.
touch "$WORK/peer.st"
python3 "$ROOT/tests/e2e/tcp_peer.py" "$WORK/peer.st" </dev/null >/dev/null 2>&1 &
peer=$!
track_pid "$peer"
wait_for 60 grep -q "^port " "$WORK/peer.st" || fail "the peer did not start"
start_ct out "$T/ct_tcp" --peer="$(awk '/^port /{print $2}' "$WORK/peer.st")" --gap-file="$WORK/gap"
ct_verify out 1
"$FP" dump --tcp-established -t "$PID" -D "$WORK/o" >/dev/null || fail "dump with a peer outside: $(tail -n 3 "$WORK/o.failed.log")"
wait_gone "$PID"
sent=$(awk '/^tx /{n=$2} END{print n}' "$WORK/peer.st")
kill -USR1 "$peer"
wait_for 60 grep -q "^tx $((sent + 3000))\$" "$WORK/peer.st" || fail "the peer did not send during the gap"
echo 3000 >"$WORK/gap"
out=$("$FP" restore -D "$WORK/o" -d --engine native 2>&1) || fail "native restore with a peer outside: $out"
ct_verify out 2
line=$(grep '^verify 2 ok' "$WORK/out.st")
rx=$(sed -n 's/.* rx=\([0-9]*\).*/\1/p' <<<"$line"); tx=$(sed -n 's/.* tx=\([0-9]*\).*/\1/p' <<<"$line")
[[ $rx == $((tx + 3000)) ]] || fail "the bytes the peer sent during the gap did not all arrive: rx=$rx tx=$tx"
! grep -q '^closed\|^bad' "$WORK/peer.st" || fail "the peer saw: $(grep '^closed\|^bad' "$WORK/peer.st")"
"$FP" dump -R --tcp-established -t "$PID" -D "$WORK/o2" >/dev/null || fail "dump -R with a peer outside"
ct_verify out 3
! grep -q '^closed\|^bad' "$WORK/peer.st" || fail "the peer saw: $(grep '^closed\|^bad' "$WORK/peer.st")"
kill -9 "$PID" "$peer"; wait_gone "$PID"

# A session: snap refuses the connections without --tcp-established, keeps
# them with it, and a restore of the session brings them back (in full).
"$FP" run --detach --name tcps -- "$T/ct_tcp" "$WORK/ses.st" --quiet-stdio >/dev/null || fail "run"
hpid=$("$FP" ps --json | python3 -c 'import json,sys; print([s["helper_pid"] for s in json.load(sys.stdin) if s["name"]=="tcps"][0])')
track_pid "$hpid"
wait_for 20 grep -q '^ready ' "$WORK/ses.st" || fail "the session's ct_tcp did not get ready"
track_pid "$(awk '/^ready /{print $2; exit}' "$WORK/ses.st")" # a session restore keeps the pid
ct_verify ses 1
err=$("$FP" snap tcps 2>&1) && fail "a session snapshot took TCP connections without --tcp-established"
[[ $err == *"--tcp-established"* ]] || fail "the snap refusal does not name --tcp-established: $err"
"$FP" snap tcps s1 --tcp-established >/dev/null || fail "snap --tcp-established"
SP=$(ports "$FORKPOINT_HOME/sessions/tcps/snapshots/s1")
[[ $(rules $SP) == 0 ]] || fail "the session snapshot left lock rules"
ct_verify ses 2
spid=$(awk '/^ready /{print $2; exit}' "$WORK/ses.st")
echo "ready $spid" >"$WORK/ses.st"
"$FP" restore tcps s1 >/dev/null || fail "restore tcps s1"
ct_verify ses 2
[[ $(rules $SP) == 0 ]] || fail "the session restore left lock rules"
"$FP" stop --kill tcps >/dev/null 2>&1

# redis with a connected client, both in one tree.
if command -v redis-server >/dev/null; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	touch "$WORK/redis.st"
	(cd "$WORK" && exec setsid python3 "$ROOT/tests/e2e/redis_client.py" "$port" "$WORK/redis.st" </dev/null \
		>"$WORK/redis.out" 2>&1 &)
	wait_for 30 grep -q '^ready ' "$WORK/redis.st" || fail "redis and its client did not start: $(cat "$WORK/redis.st" "$WORK/redis.out")"
	read -r _ cp rp < <(grep '^ready ' "$WORK/redis.st")
	track_pid "$cp"; track_pid "$rp"
	kill -USR1 "$cp"
	wait_for 10 grep -q '^answer 1 1 fp-value$' "$WORK/redis.st" || fail "redis client: $(tail -n 2 "$WORK/redis.st")"
	rc=0; "$FP" dump -t "$cp" -D "$WORK/rno" >/dev/null 2>&1 || rc=$?
	((rc != 0)) || fail "redis with a client was dumped without --tcp-established"
	"$FP" dump --tcp-established -t "$cp" -D "$WORK/redis" >/dev/null || fail "dump of redis: $(tail -n 3 "$WORK/redis.failed.log")"
	wait_gone "$cp"; wait_gone "$rp"
	out=$("$FP" restore -D "$WORK/redis" -d -o "$WORK/redis-restore.log" 2>&1) || fail "restore of redis: $out"
	grep -q natively "$WORK/redis-restore.log" || fail "redis was not restored natively: $out"
	kill -USR1 "$cp"
	wait_for 20 grep -q '^answer 2 2 fp-value$' "$WORK/redis.st" || fail "the client's connection did not carry on: $(tail -n 2 "$WORK/redis.st")"
	[[ $(redis-cli -p "$port" get fp-n) == 2 ]] || fail "a new client does not see the restored data"
	kill -9 "$cp" "$rp" 2>/dev/null
fi
echo ok
