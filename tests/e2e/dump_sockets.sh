# Sockets without connection state: TCP listeners (IPv4, IPv6), a bound TCP
# socket and a unix listener are dumped as CRIU's INETSK/UNIXSK entries and
# restored listening on the same addresses, by the native engine and by
# CRIU; a unix socket connected outside the tree is refused with a clear
# error and the target runs on. Then redis, idle, is checkpointed and
# comes back natively with its data.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
start_ct sk "$T/ct_sockets" --dir="$WORK"
ct_verify sk 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify sk 2
"$FP" dump -t "$PID" -D "$WORK/d" --compress none >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
crit decode -i "$WORK/d/files.img" --pretty >"$WORK/files.json" || fail "crit cannot decode files.img"
python3 - "$WORK/files.json" <<'PY' || fail "socket entries in files.img"
import json, sys
es = json.load(open(sys.argv[1]))["entries"]
inet = [e["isk"] for e in es if e["type"] == "INETSK"]
unix = [e["usk"] for e in es if e["type"] == "UNIXSK"]
assert sorted(i["state"] for i in inet) == ["CLOSE", "LISTEN", "LISTEN"], inet
assert sorted(i["family"] for i in inet) == ["INET", "INET", "INET6"], inet
assert all(i["backlog"] == 7 for i in inet if i["state"] == "LISTEN"), inet
assert len(unix) == 1 and unix[0]["state"] == "LISTEN", unix
PY
engines=(native)
if [[ -n $CRIU ]]; then engines+=(criu); else skip_part "restore --engine criu"; fi
for engine in "${engines[@]}"; do
	echo "ready $PID" >"$WORK/sk.st"
	out=$("$FP" restore -D "$WORK/d" -d --engine $engine 2>&1) || fail "restore --engine $engine: $out"
	ct_verify sk 3
	kill -9 "$PID"; wait_gone "$PID"
done

# A unix socket connected to a program outside the dumped tree: refused,
# named, and the target untouched.
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); c.recv(1)' "$WORK/outside.sock" &
outside=$!
track_pid "$outside"
wait_for 10 test -S "$WORK/outside.sock" || fail "the outside listener did not start"
start_ct cn "$T/ct_sockets" --dir="$WORK" --connect="$WORK/outside.sock"
rc=0; err=$("$FP" dump -t "$PID" -D "$WORK/c" 2>&1) || rc=$?
((rc != 0)) || fail "a socket connected outside the tree was dumped"
[[ $err == *"unix socket fd"*"no process of the dumped tree"* ]] || fail "the refusal does not name the socket: $err"
[[ ! -e $WORK/c ]] || fail "a refused dump left $WORK/c"
ct_verify cn 1
kill -9 "$PID" "$outside"; wait_gone "$PID"

# redis, idle (no client connected), with a key: dumped and restored.
if command -v redis-server >/dev/null; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	(cd "$WORK" && exec setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$WORK" </dev/null >"$WORK/redis.out" 2>&1 &)
	wait_for 10 bash -c "redis-cli -p $port ping >/dev/null 2>&1" || fail "redis did not start: $(tail -n 3 "$WORK/redis.out")"
	rp=$(pgrep -f "redis-server 127.0.0.1:$port"); track_pid "$rp"
	redis-cli -p "$port" set fp-key fp-value >/dev/null
	# the client's connection closes asynchronously: wait until redis has none
	wait_for 10 bash -c "[[ \$(ls -l /proc/$rp/fd | grep -c socket) == 1 ]]" || fail "redis kept a client connection"
	"$FP" dump -t "$rp" -D "$WORK/redis" >/dev/null || fail "dump of redis: $(tail -n 3 "$WORK/redis.failed.log" 2>/dev/null)"
	wait_gone "$rp"
	out=$("$FP" restore -D "$WORK/redis" -d -o "$WORK/redis-restore.log" 2>&1) || fail "restore of redis: $out"
	grep -q natively "$WORK/redis-restore.log" || fail "redis was not restored natively: $out"
	[[ $(redis-cli -p "$port" get fp-key) == fp-value ]] || fail "restored redis lost its key"
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
	wait_gone "$rp"
fi
echo ok
