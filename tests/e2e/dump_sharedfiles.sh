# A child made with clone(CLONE_FILES | CLONE_FS) shares its parent's fd
# table and fs info (ct_sharedfiles). Four ways: `dump --leave-running`
# with the original still passing its check; dump and native restore (the
# child is cloned again with those flags, so an fd one opens the other
# sees, and a chdir moves both); `criu restore` of forkpoint's image;
# `criu dump` and native restore (these two with the fd table shared only:
# CRIU 4.2's restore gives each process fs info of its own).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
start_ct sf "$T/ct_sharedfiles" --dir="$WORK"
KID=$(awk '/^info child/{print $4; exit}' "$WORK/sf.st")
track_pid "$KID"
# (criu_both_ways kills main only: the child outlives it)
tree_gone() { kill -9 "$KID" 2>/dev/null; wait_gone "$PID"; wait_gone "$KID"; }
ct_verify sf 1
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
ct_verify sf 2
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
tree_gone
n=$(ls "$WORK"/d/fdinfo-*.img | wc -l)
((n == 1)) || fail "expected one fd table (fdinfo image) for the two processes, got $n"
out=$("$FP" restore -D "$WORK/d" -d --engine native -o "$WORK/native.log" 2>&1) || fail "native restore: $out"
grep -q "natively (2 processes)" "$WORK/native.log" || fail "not restored natively: $(tail -n 3 "$WORK/native.log")"
ct_verify sf 3
ct_verify sf 4
kill -9 "$PID" "$KID"; tree_gone
if [[ -n $CRIU ]]; then
	start_ct sc "$T/ct_sharedfiles" --dir="$WORK" --files-only
	KID=$(awk '/^info child/{print $4; exit}' "$WORK/sc.st")
	track_pid "$KID"
	ct_verify sc 1
	"$FP" dump -t "$PID" -D "$WORK/f" >/dev/null || fail "dump: $(tail -n 3 "$WORK/f.failed.log" 2>/dev/null)"
	tree_gone
	"$FP" restore -D "$WORK/f" -d --engine native >/dev/null || fail "native restore of $WORK/f"
	ct_verify sc 2
	sc_again() {
		if [[ $1 == "criu restore" ]]; then
			echo "ready $PID" >"$WORK/sc.st"
			ct_verify sc 2
		else
			ct_verify sc 3
		fi
	}
	criu_both_ways "$WORK/f" sc_again
else
	skip_part "criu restore of forkpoint's image of a shared fd table, and native restore of CRIU's"
fi
echo ok
