# Files deleted while open (ghost files): the bytes travel in the image, and
# after a restore the process's fds point at one deleted file again (the
# same inode through both descriptions), with their offsets. Natively and
# through CRIU, both ways, and with --leave-running.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

mkdir "$WORK/d1"
(cd "$WORK/d1" && exec setsid bash -c 'exec 3<>tmpfile; printf "ghost bytes, sixteen+" >&3; exec 4<tmpfile; rm tmpfile; exec sleep 600' \
	</dev/null >/dev/null 2>&1 & echo $! >"$WORK/g.pid")
GP=$(cat "$WORK/g.pid"); track_pid "$GP"
wait_for 20 bash -c "[[ \$(readlink /proc/$GP/exe) == */sleep ]]" || fail "the holder did not start"
check() { # WHAT
	[[ $(readlink "/proc/$GP/fd/3") == "$WORK/d1/tmpfile (deleted)" ]] || fail "$1: fd 3 is $(readlink "/proc/$GP/fd/3")"
	[[ $(stat -L -c %i "/proc/$GP/fd/3") == $(stat -L -c %i "/proc/$GP/fd/4") ]] || fail "$1: fds 3 and 4 are two files now"
	[[ $(cat "/proc/$GP/fd/4") == "ghost bytes, sixteen+" ]] || fail "$1: the file holds '$(cat "/proc/$GP/fd/4")'"
	[[ $(awk '/^pos/ {print $2}' "/proc/$GP/fdinfo/3") == 21 ]] || fail "$1: fd 3's offset is $(awk '/^pos/ {print $2}' "/proc/$GP/fdinfo/3")"
	[[ ! -e $WORK/d1/tmpfile ]] || fail "$1: the file is back in the directory"
	[[ -z $(ls -A "$WORK/d1") ]] || fail "$1: left behind: $(ls -A "$WORK/d1")"
}
check "original"
"$FP" dump -R -t "$GP" -D "$WORK/r" >/dev/null || fail "dump -R: $(tail -n 3 "$WORK/r.failed.log" 2>/dev/null)"
check "original after dump -R"
crit decode -i "$WORK/r/remap-fpath.img" --pretty | grep -q GHOST || fail "no GHOST remap in remap-fpath.img"
"$FP" dump -t "$GP" -D "$WORK/d" >/dev/null || fail "dump: $(tail -n 3 "$WORK/d.failed.log" 2>/dev/null)"
wait_gone "$GP"
"$FP" restore -D "$WORK/d" -d --engine native >/dev/null || fail "native restore"
check "native restore"
PID=$GP criu_both_ways "$WORK/d" check
# A deleted file larger than --ghost-limit is refused, by name, and the
# process runs on untouched.
rc=0; out=$("$FP" dump -R -t "$GP" -D "$WORK/small" --ghost-limit 8 2>&1) || rc=$?
((rc != 0)) || fail "a deleted file over --ghost-limit was dumped"
[[ $out == *"deleted file of 21 bytes"*"--ghost-limit"* ]] || fail "unclear refusal: $out"
check "after a refused dump"
echo ok
