# Private mappings of files deleted since, and a deleted executable
# (ct_ghostmap): the files' bytes travel as CRIU ghost files (crit decodes
# them), the pages the process copied on write as its own; after a restore
# the target proves every page, the maps lines ("PATH (deleted)"), the held
# fd (offset, the mapping's inode, one file with it) and /proc/self/exe.
# Four ways: dump and native restore; `criu restore` of forkpoint's image;
# `criu dump` and native restore; dump --leave-running with the original
# still passing its check. Nothing is left in the directory.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

mkdir "$WORK/gd"
start_ct gm "$T/ct_ghostmap" --dir="$WORK/gd" --deleted-exe
# the verification number a restored process answers with: the image d
# was taken after 2, CRIU's image of the process restored from it after 3
check() { # WHAT [N]
	local n=${2:-}
	[[ -z $n ]] && case $1 in
		"criu restore") n=3 ;;
		"native restore of CRIU's image") n=4 ;;
	esac
	ct_verify gm "$n" || fail "$1"
	[[ $(readlink "/proc/$PID/exe") == "$WORK/gd/ct_ghostmap.exe (deleted)" ]] ||
		fail "$1: exe is $(readlink "/proc/$PID/exe")"
	[[ -z $(ls -A "$WORK/gd") ]] || fail "$1: left behind: $(ls -A "$WORK/gd")"
}
check "original" 1

# --leave-running: the original is unharmed and passes its check
"$FP" dump -R -t "$PID" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
check "original after dump -R" 2
crit decode -i "$WORK/r/remap-fpath.img" --pretty >"$WORK/remap.txt" || fail "crit cannot decode remap-fpath.img"
[[ $(grep -c GHOST "$WORK/remap.txt") -ge 4 ]] || fail "fewer than 4 ghost remaps: $(cat "$WORK/remap.txt")"
for g in "$WORK"/r/ghost-file-*.img; do
	crit decode -i "$g" >/dev/null || fail "crit cannot decode $g"
done
crit decode -i "$WORK/r/files.img" --pretty | grep -q "\"$WORK/gd/gm_priv.dat\"" ||
	fail "files.img does not name gm_priv.dat by its old path"

# dump (kills) and native restore: the image of -R restores too, but this
# one is of the process as it is now
"$FP" dump -t "$PID" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$PID"
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "native restore"
check "native restore" 3
# again from the same image
kill -9 "$PID"; wait_gone "$PID"
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "second native restore"
check "second native restore" 3
PID=$PID criu_both_ways "$WORK/d" check
kill -9 "$PID"

# A session: the rollback in place keeps the deleted files when they hold
# SNAP's bytes (the fd's file compared with the ghost), and a full restore
# brings them back when they changed.
mkdir "$WORK/sd"
"$FP" run --detach --name gs -- "$T/ct_ghostmap" "$WORK/gs.st" --dir="$WORK/sd" >/dev/null || fail "run"
track_pid "$(session_field gs helper_pid)"
wait_for 20 grep -q '^ready' "$WORK/gs.st" || fail "session target not ready: $(cat "$WORK/gs.st")"
PID=$(session_field gs target_pid); track_pid "$PID"
"$FP" snap gs s0 >/dev/null || fail "snap"
ct_verify gs 1
"$FP" restore gs s0 --json >"$WORK/r1.json" || fail "restore: $(cat "$WORK/r1.json")"
grep -q '"in_place": true' "$WORK/r1.json" || fail "not in place: $(cat "$WORK/r1.json")"
ct_verify gs 1
fd=$(awk '/^info map both/{print $NF}' "$WORK/gs.st")
printf X | dd of="/proc/$PID/fd/$fd" bs=1 seek=100 conv=notrunc status=none || fail "writing the deleted file"
"$FP" restore gs s0 --json >"$WORK/r2.json" || fail "restore after the write: $(cat "$WORK/r2.json")"
grep -q '"in_place": false' "$WORK/r2.json" || fail "in place over a changed deleted file: $(cat "$WORK/r2.json")"
grep -q 'whose bytes SNAP kept' "$WORK/r2.json" || fail "why not in place: $(cat "$WORK/r2.json")"
PID=$(session_field gs target_pid); track_pid "$PID"
ct_verify gs 1
[[ -z $(ls -A "$WORK/sd") ]] || fail "session: left behind: $(ls -A "$WORK/sd")"
"$FP" stop --kill gs >/dev/null
echo ok
