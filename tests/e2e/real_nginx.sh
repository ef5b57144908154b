# nginx with two workers (master and workers talk over socket pairs; the
# workers share the listening socket, an epoll each, and shared anonymous
# memory), from its own prefix and port. It answers, is dumped with
# --leave-running and still answers; dumped, restored natively, answers and
# reloads (new workers, over the restored channels); then `criu restore`
# of forkpoint's image, and `criu dump` restored natively, each answering.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
command -v nginx >/dev/null || { echo "no nginx (nginx-light)"; exit 77; }
ng=$WORK/ng
mkdir -p "$ng/conf" "$ng/logs" "$ng/html" "$ng/tmp"
chmod 755 "$WORK" "$ng" "$ng/html" # the workers run as nobody
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="forkpoint-nginx-$RANDOM$RANDOM"
echo "$token" >"$ng/html/index.html"
cat >"$ng/conf/nginx.conf" <<CONF
worker_processes 2;
daemon on;
pid $ng/nginx.pid;
error_log $ng/logs/error.log;
events { worker_connections 64; }
http {
	access_log $ng/logs/access.log;
	client_body_temp_path $ng/tmp;
	proxy_temp_path $ng/tmp;
	fastcgi_temp_path $ng/tmp;
	uwsgi_temp_path $ng/tmp;
	scgi_temp_path $ng/tmp;
	server { listen 127.0.0.1:$port; root $ng/html; }
}
CONF
# The page's body, through bash's own TCP (no HTTP client is installed).
page() {
	local body
	body=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$port" 2>&1) || {
		echo "no answer: $body"
		return 1
	}
	sed '1,/^\r$/d' <<<"$body"
}
answers() { [[ $(page) == "$token" ]]; }
workers() { pgrep -P "$PID" | wc -l; }
# (criu_both_ways kills the master only: workers outlive it)
tree_gone() {
	local k
	kill -9 $KIDS 2>/dev/null
	for k in $PID $KIDS; do
		wait_for 15 test ! -e "/proc/$k" || fail "pid $k is still there: $(ps -o pid,ppid,stat,cmd -p "$k" | tail -n 1) (tree $PID $KIDS); error.log: $(grep -v "is forbidden" "$ng/logs/error.log" | tail -n 5)"
	done
}
ready() { # WHAT: the master, two workers, answering
	wait_for 10 test "$(workers)" -eq 2 || fail "$1: nginx has $(workers) workers"
	KIDS=$(pgrep -P "$PID" | tr '\n' ' ')
	for k in $KIDS; do track_pid "$k"; done
	answers || fail "$1: nginx does not answer: $(page | head -c 200) $(tail -n 3 "$ng/logs/error.log")"
}

(cd "$ng" && exec nginx -p "$ng" -c conf/nginx.conf </dev/null >/dev/null 2>&1)
wait_for 10 test -s "$ng/nginx.pid" || fail "nginx did not start: $(tail -n 3 "$ng/logs/error.log")"
PID=$(cat "$ng/nginx.pid"); track_pid "$PID"
ready "at start"
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ready "after the dump with --leave-running"
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
tree_gone
! answers || fail "nginx still answers after the dump"
out=$("$FP" restore -D "$WORK/d" -d --engine native -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
grep -q "natively (3 processes)" "$WORK/native.log" || fail "not restored natively: $(tail -n 3 "$WORK/native.log")"
ready "after the native restore"
# a reload: the master starts new workers and tells the old ones to go,
# over the socket pairs the restore made
old=$KIDS
kill -HUP "$PID"
wait_for 15 bash -c "[[ \$(pgrep -P $PID | tr '\n' ' ') != '$old' ]] && [[ \$(pgrep -P $PID | wc -l) == 2 ]]" ||
	fail "no new workers after a reload: $(pgrep -P "$PID" | tr '\n' ' ') (were $old)"
ready "after a reload"
kill_tree() { kill -9 "$PID" $KIDS 2>/dev/null; tree_gone; }
if [[ -n $CRIU ]]; then
	kill_tree
	"$FP" restore -D "$WORK/d" -d --engine criu -o "$WORK/d.criu-restore.log" >/dev/null ||
		fail "criu restore: $(grep Error "$WORK/d.criu-restore.log" | head -n 3)"
	ready "after criu restore of forkpoint's image"
	kill_tree
	# CRIU cannot read the limits of another user's process without
	# CAP_SYS_RESOURCE, which this machine's root lacks: for `criu dump`,
	# the workers run as root.
	sed -i 's/^worker_processes 2;/user root;\nworker_processes 2;/' "$ng/conf/nginx.conf"
	rm -f "$ng/nginx.pid"
	(cd "$ng" && exec nginx -p "$ng" -c conf/nginx.conf </dev/null >/dev/null 2>&1)
	wait_for 10 test -s "$ng/nginx.pid" || fail "nginx did not start again: $(tail -n 3 "$ng/logs/error.log")"
	PID=$(cat "$ng/nginx.pid"); track_pid "$PID"
	ready "started again"
	mkdir "$WORK/c"
	criu_run dump -t "$PID" -D "$WORK/c" -o dump.log || fail "criu dump: $(grep Error "$WORK/c/dump.log" | head -n 3)"
	tree_gone
	out=$("$FP" restore -D "$WORK/c" -d --engine native -o "$WORK/c.native.log" 2>&1) || fail "native restore of CRIU's image: $out"
	grep -q "natively (3 processes)" "$WORK/c.native.log" || fail "CRIU's image not restored natively"
	ready "after the native restore of CRIU's image"
else
	skip_part "criu restore of forkpoint's image of nginx, and native restore of CRIU's"
fi
kill -QUIT "$PID"
tree_gone
echo ok
