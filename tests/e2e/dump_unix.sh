# Unix sockets between a parent and its child with messages waiting in
# their queues (ct_unix: stream, datagram and seqpacket socket pairs, an
# accepted connection on a path listener, a datagram socket connected to an
# abstract name, a shut-down pair, a pair whose other end was closed, a
# listener whose path was unlinked). Four ways: `dump --leave-running`
# with the original still passing its check; dump and native restore;
# `criu restore` of forkpoint's image; `criu dump` and native restore.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

start_tree() { # NAME ARGS...
	start_ct "$@" --dir="$WORK"
	KID=$(awk '/^info child/{print $4; exit}' "$WORK/$1.st")
	track_pid "$KID"
}
tree_gone() { wait_gone "$PID"; wait_gone "$KID"; }
kill_tree() { kill -9 "$PID" "$KID" 2>/dev/null; tree_gone; }

start_tree ux "$T/ct_unix" --empty-datagrams
ct_verify ux 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify ux 2
ct_verify ux 3
crit decode -i "$WORK/r/files.img" --pretty >"$WORK/files.json" || fail "crit cannot decode files.img"
crit decode -i "$WORK/r/sk-queues.img" --pretty >"$WORK/queues.json" || fail "crit cannot decode sk-queues.img"
python3 - "$WORK/files.json" "$WORK/queues.json" <<'PY' || fail "unix socket entries: see above"
import json, sys
es = json.load(open(sys.argv[1]))["entries"]
usk = {e["id"]: e["usk"] for e in es if e["type"] == "UNIXSK"}
by_ino = {u["ino"]: u for u in usk.values()}
for u in usk.values():  # every peer is in the image, and pairs name each other
    assert not u["peer"] or u["peer"] in by_ino, u
gone = [u for u in usk.values() if u.get("deleted")]
assert len(gone) == 1 and gone[0]["state"] == "LISTEN" and gone[0]["name"].endswith("ct-gone.sock"), gone
assert sorted(u.get("shutdown", "NONE") for u in usk.values() if u.get("shutdown")) == ["BOTH", "READ", "WRITE"], usk
q = json.load(open(sys.argv[2]))["entries"]
assert all(p["id_for"] in usk for p in q), q
# channel 1 towards the child: 33, 100000, 0 and 7 bytes, in that order
lens = [[p["length"] for p in q if p["id_for"] == i] for i in usk]
assert [33, 100000, 0, 7] in lens, lens
PY
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
tree_gone
out=$("$FP" restore -D "$WORK/d" -d --engine native -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
grep -q "natively (2 processes)" "$WORK/native.log" || fail "not restored natively: $(tail -n 3 "$WORK/native.log")"
ct_verify ux 4
ct_verify ux 5
kill_tree

if [[ -n $CRIU ]]; then
	# the image of the live dump (taken after verification 1) through CRIU
	echo "ready $PID" >"$WORK/ux.st"
	"$FP" restore -D "$WORK/r" -d --engine criu -o "$WORK/r.criu.log" >/dev/null ||
		fail "criu restore: $(grep Error "$WORK/r.criu.log" | head -n 3)"
	ct_verify ux 2
	ct_verify ux 3
	kill_tree
	# CRIU's dump, restored natively (without datagrams of no bytes, which
	# CRIU's dump loses)
	start_tree uc "$T/ct_unix"
	ct_verify uc 1
	mkdir "$WORK/c"
	criu_run dump -t "$PID" -D "$WORK/c" -o dump.log || fail "criu dump: $(grep Error "$WORK/c/dump.log" | head -n 3)"
	tree_gone
	out=$("$FP" restore -D "$WORK/c" -d --engine native -o "$WORK/c.native.log" 2>&1) || fail "native restore of CRIU's image: $out"
	grep -q "natively (2 processes)" "$WORK/c.native.log" || fail "CRIU's image not restored natively"
	ct_verify uc 2
	ct_verify uc 3
	kill_tree
else
	skip_part "criu restore of forkpoint's image of unix sockets, and native restore of CRIU's"
fi
echo ok
