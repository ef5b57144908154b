# Every image forkpoint dump writes is readable by crit (Debian 12's
# /usr/bin/crit), and `crit x DIR ps` sees the whole tree.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
CRIT=${CRIT:-/usr/bin/crit}
[[ -x $CRIT ]] || { echo "no crit at $CRIT"; exit 77; }
TH=$T/ct_threads; [[ -x $TH ]] || TH=$T/dump_threads
for tgt in "$TH" "$T/dump_files" "$T/ct_heap --mib=4"; do
	set -- $tgt
	name=$(basename "$1")
	start_ct "$name" "$@"
	"$FP" dump -R -t "$PID" -D "$WORK/$name" --compress none >/dev/null || fail "dump of $name failed"
	n=0
	for f in "$WORK/$name"/*.img; do
		[[ $(basename "$f") == pages-* ]] && continue
		"$CRIT" decode -i "$f" >"$WORK/out.json" 2>"$WORK/crit.err" || fail "crit cannot decode $f: $(tail -n 3 "$WORK/crit.err")"
		n=$((n + 1))
	done
	(( n >= 10 )) || fail "$name: only $n images"
	"$CRIT" x "$WORK/$name" ps >"$WORK/ps.txt" 2>&1 || fail "crit x ps failed: $(cat "$WORK/ps.txt")"
	grep -q "$PID" "$WORK/ps.txt" || fail "crit x ps does not list $PID"
	ct_verify "$name" 1
	echo "$name: $n images decoded"
done
echo ok
