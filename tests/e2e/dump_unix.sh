# Unix sockets between a parent and its child with messages waiting in
# their queues (ct_unix: stream, datagram and seqpacket socket pairs, an
# accepted connection on a path listener, a datagram socket connected to an
# abstract name, a shut-down pair, a pair whose other end was closed, a
# listener whose path was unlinked, fds in flight). Four ways: `dump
# --leave-running` with the original still passing its check; dump and
# native restore; `criu restore` of forkpoint's image; `criu dump` and
# native restore. CRIU's dump loses datagrams of no bytes: that part runs
# without them. (CRIU 4.2's restore of fds in flight needs the sending end
# of a pair after the receiving end in files.img: dump/dump_usk_order.c.)
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

start_tree() { # NAME ARGS...
	start_ct "$@" --dir="$WORK"
	KID=$(awk '/^info child/{print $4; exit}' "$WORK/$1.st")
	track_pid "$KID"
}
tree_gone() { wait_gone "$PID"; wait_gone "$KID"; }
kill_tree() { kill -9 "$PID" "$KID" 2>/dev/null; tree_gone; }

start_tree ux "$T/ct_unix" --empty-datagrams --rights
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
# a path keeps its terminating NUL (crit shows =00), as in the images CRIU writes
assert len(gone) == 1 and gone[0]["state"] == "LISTEN" and gone[0]["name"].endswith("ct-gone.sock=00"), gone
assert sorted(u.get("shutdown", "NONE") for u in usk.values() if u.get("shutdown")) == ["BOTH", "READ", "WRITE"], usk
q = json.load(open(sys.argv[2]))["entries"]
assert all(p["id_for"] in usk for p in q), q
# channel 1 towards the child: 33, 100000, 0 and 7 bytes, in that order,
# then a message with two fds in flight: main's open file, and a regular
# file no process holds (a file entry of its own, at its offset)
lens = [[p["length"] for p in q if p["id_for"] == i] for i in usk]
assert [33, 100000, 0, 7, 6] in lens, lens
scm = [p["scm"] for p in q if p.get("scm")]
assert len(scm) == 1 and len(scm[0][0]["rights"]) == 2, scm
reg = {e["id"]: e["reg"] for e in es if e["type"] == "REG"}
held, loose = scm[0][0]["rights"]
assert reg[held]["name"].endswith("ct-unix.held") and reg[loose]["name"].endswith("ct-unix.loose"), scm
assert reg[loose]["pos"] == 11, reg[loose]
PY
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
tree_gone
out=$("$FP" restore -D "$WORK/d" -d --engine native -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
grep -q "natively (2 processes)" "$WORK/native.log" || fail "not restored natively: $(tail -n 3 "$WORK/native.log")"
ct_verify ux 4
ct_verify ux 5
kill_tree

if [[ -n $CRIU ]]; then
	# forkpoint's image through CRIU, fds in flight included
	start_tree ur "$T/ct_unix" --empty-datagrams --rights
	ct_verify ur 1
	"$FP" dump -t "$PID" -D "$WORK/f" >/dev/null || fail "dump: $(tail -n 3 "$WORK/f.failed.log" 2>/dev/null)"
	tree_gone
	"$FP" restore -D "$WORK/f" -d --engine criu -o "$WORK/f.criu.log" >/dev/null ||
		fail "criu restore: $(grep Error "$WORK/f.criu.log" | head -n 3)"
	ct_verify ur 2
	ct_verify ur 3
	kill_tree
	# CRIU's dump, restored natively (no datagrams of no bytes)
	start_tree uc "$T/ct_unix" --rights
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
