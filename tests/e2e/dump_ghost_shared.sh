# A MAP_SHARED mapping of a file deleted since, on a disk file system (not
# tmpfs), written by a process and its child (ct_ghostshared): the file's
# bytes travel as one CRIU ghost file, and after a restore both processes
# map one file again: each sees what the other writes. Dump --leave-running
# (the original still passes its check), dump and native restore, `criu
# restore` of forkpoint's image, `criu dump` and native restore. Nothing is
# left in the directory.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

mkdir "$WORK/gs"
fs=$(stat -f -c %T "$WORK/gs")
[[ $fs != tmpfs ]] || { echo "$WORK is on tmpfs: this test is for other file systems"; exit 77; }
start_ct gs "$T/ct_ghostshared" --dir="$WORK/gs"
KID=$(awk '/^info child /{print $3; exit}' "$WORK/gs.st")
track_pid "$KID"
tree_gone() { wait_gone "$PID"; wait_gone "$KID"; }
check() { # WHAT N
	ct_verify gs "$2" || fail "$1"
	[[ -z $(ls -A "$WORK/gs") ]] || fail "$1: left behind: $(ls -A "$WORK/gs")"
	local a b
	a=$(awk '/gs_shared.dat/{print $5}' "/proc/$PID/maps")
	b=$(awk '/gs_shared.dat/{print $5}' "/proc/$KID/maps")
	[[ -n $a && $a == "$b" ]] || fail "$1: parent and child map inodes '$a' and '$b'"
}
check "original" 1

"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
check "original after dump -R" 2
[[ $(crit decode -i "$WORK/r/remap-fpath.img" --pretty | grep -c GHOST) == 1 ]] ||
	fail "not one ghost remap: $(crit decode -i "$WORK/r/remap-fpath.img" --pretty)"

"$FP" dump -t "$PID" -D "$WORK/d" --compress none >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
tree_gone
cp -a "$WORK/d" "$WORK/dc"
out=$("$FP" restore -D "$WORK/d" -d --engine native 2>&1) || fail "native restore: $out"
check "native restore" 3

if [[ -n $CRIU ]]; then
	kill -9 "$PID" "$KID"; tree_gone
	criu_run restore -D "$WORK/dc" -d -v4 -o restore.log || fail "criu restore: $(grep Error "$WORK/dc/restore.log" | head -n 5)"
	check "criu restore" 3
	mkdir "$WORK/c"
	criu_run dump -t "$PID" -D "$WORK/c" -o dump.log || fail "criu dump: $(grep Error "$WORK/c/dump.log" | head -n 3)"
	tree_gone
	out=$("$FP" restore -D "$WORK/c" -d --engine native 2>&1) || fail "native restore of CRIU's dump: $out"
	check "native restore of CRIU's image" 4
else
	skip_part "criu restore of forkpoint's image, native restore of criu dump"
fi
kill -9 "$PID" "$KID"
echo ok
