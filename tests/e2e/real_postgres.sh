# PostgreSQL 15 with a connected psql: a private cluster (initdb in the
# test's directory, as user postgres, port on loopback, unix socket in the
# test's directory), started by a bash that also runs psql (its input a
# named FIFO the bash holds open, its output a file), so the tree holds the
# postmaster, its children (checkpointer, background writer, WAL writer,
# launchers, psql's backend) and psql, connected over a unix socket inside
# the tree. PostgreSQL uses a SysV segment (its interlock), shared
# anonymous memory (its buffers and semaphores), POSIX shared memory files
# in /dev/shm, epoll and pipes. The tree is dumped (killed) and restored
# natively; psql carries on with its connection (a query answered, with a
# row written before the dump), and new clients connect over TCP and over
# the unix socket (whose file keeps its owner and mode).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
B=/usr/lib/postgresql/15/bin
[[ -x $B/postgres && -x $B/initdb ]] || { echo "no PostgreSQL 15 ($B)"; exit 77; }
id postgres >/dev/null 2>&1 || { echo "no user postgres"; exit 77; }
as_pg() { setpriv --reuid postgres --regid postgres --init-groups -- "$@"; }

pg=$WORK/pg
mkdir -p "$pg"
chmod 755 "$WORK"
chown postgres "$pg"
as_pg "$B/initdb" -D "$pg/data" -A trust -U postgres >"$WORK/initdb.log" 2>&1 || fail "initdb: $(tail -n 5 "$WORK/initdb.log")"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkfifo "$pg/in"
chown postgres "$pg/in"
cat >"$pg/tree.sh" <<EOF
exec 3<>"$pg/in"
"$B/postgres" -D "$pg/data" -k "$pg" -p $port -c listen_addresses=127.0.0.1 -c shared_buffers=16MB \
	-c logging_collector=off >"$pg/pg.log" 2>&1 &
until "$B/pg_isready" -q -h "$pg" -p $port; do sleep 0.05; done
"$B/psql" -h "$pg" -p $port -U postgres -X -A -t <"$pg/in" >"$pg/out" 2>&1 &
echo ready >"$pg/ready"
wait
EOF
(cd "$pg" && exec setsid setpriv --reuid postgres --regid postgres --init-groups -- bash "$pg/tree.sh" </dev/null >"$pg/tree.out" 2>&1 &)
wait_for 60 test -e "$pg/ready" || fail "PostgreSQL did not start: $(tail -n 5 "$pg/pg.log")"
root=$(pgrep -f "^bash $pg/tree.sh" | head -n 1)
[[ -n $root ]] || fail "no tree"
track_pid "$root"
stop_tree() {
	local p
	for p in $(pgrep -f "$pg" ) ; do kill -9 "$p" 2>/dev/null; done
	ipcs -m | awk '$3 == "postgres" {print $2}' | while read -r s; do
		grep -qs "$s" "$pg/data/postmaster.pid" && ipcrm -m "$s"
	done
}
trap 'stop_tree; cleanup' EXIT

ask() { # SQL EXPECTED: through the psql of the tree (EXPECTED: its last line, new)
	local n
	n=$(wc -l <"$pg/out")
	echo "$1" >"$pg/in"
	wait_for 30 bash -c "(( \$(wc -l <'$pg/out') > $n )) && [[ \$(tail -n 1 '$pg/out') == '$2' ]]" ||
		fail "'$1' gave '$(tail -n 3 "$pg/out")', expected '$2'"
}
ask "create table t(x int); insert into t values (41); select sum(x) + 1 from t;" 42
pids=$(pgrep -f "$pg" | sort -n | tr '\n' ' ')

"$FP" dump -t "$root" -D "$WORK/d1" -o "$WORK/dump1.log" >/dev/null || fail "dump: $(tail -n 5 "$WORK/dump1.log")"
for p in $pids; do wait_gone "$p"; done
ls "$WORK"/d1/ipcns-shm-*.img >/dev/null || fail "PostgreSQL's SysV segment is not in the image"
out=$("$FP" restore -D "$WORK/d1" --engine native -d -o "$WORK/native1.log" 2>&1) || fail "native restore: $out"
[[ $out == "$root" ]] || fail "native restore printed '$out'"
grep -q "natively ([0-9]* processes)" "$WORK/native1.log" || fail "not restored natively: $(tail -n 3 "$WORK/native1.log")"

ask "insert into t values (1); select sum(x) + 100 from t;" 142
[[ $(as_pg "$B/psql" -h 127.0.0.1 -p "$port" -U postgres -X -A -t -c "select sum(x) * 2 from t;" 2>&1) == 84 ]] ||
	fail "a new client over TCP: $(as_pg "$B/psql" -h 127.0.0.1 -p "$port" -U postgres -X -A -t -c "select 1" 2>&1)"
[[ $(as_pg "$B/psql" -h "$pg" -p "$port" -U postgres -X -A -t -c "select count(*) from t;" 2>&1) == 2 ]] ||
	fail "a new client over the unix socket: $(as_pg "$B/psql" -h "$pg" -p "$port" -U postgres -X -A -t -c "select 1" 2>&1)"
ask "select count(*) from pg_stat_activity where backend_type = 'client backend';" 1
as_pg "$B/pg_ctl" -D "$pg/data" stop -m fast >"$WORK/stop.log" 2>&1 || fail "pg_ctl stop: $(cat "$WORK/stop.log")"
grep -q "database system is shut down" "$pg/pg.log" || fail "no clean shutdown: $(tail -n 3 "$pg/pg.log")"
echo ok
