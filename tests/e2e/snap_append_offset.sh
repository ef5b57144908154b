# In a --workdir session, a snapshot moves the program's fds to the new
# overlay mount without moving their offsets, O_APPEND ones included (one
# went from 50 to 0).
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (--workdir mounts an overlay)"; exit 77; }
mkdir -p "$WORK/dir"
"$FP" run --shell --workdir "$WORK/dir" --name app >/dev/null || fail "run --shell --workdir"
track_pid "$(session_field app helper_pid)"
pid=$(session_field app target_pid)
# fd 7: O_APPEND at offset 50; fd 8: read-only at offset 3.
"$FP" exec app -c 'exec 7>>log; printf "%050d" 0 >&7; echo abcdef >ro; exec 8<ro; read -n 3 x <&8' || fail "open the files"
pos() { awk '/^pos:/{print $2}' "/proc/$pid/fdinfo/$1"; }
flags() { awk '/^flags:/{print $2}' "/proc/$pid/fdinfo/$1"; }
[[ $(pos 7) == 50 && $(pos 8) == 3 ]] || fail "setup: offsets $(pos 7) $(pos 8)"
(( 8#$(flags 7) & 02000 )) || fail "fd 7 is not O_APPEND: flags $(flags 7)"
"$FP" snap app s1 >/dev/null || fail "snap"
[[ $(pos 7) == 50 ]] || fail "the snapshot moved the O_APPEND fd's offset to $(pos 7)"
[[ $(pos 8) == 3 ]] || fail "the snapshot moved the read fd's offset to $(pos 8)"
(( 8#$(flags 7) & 02000 )) || fail "fd 7 lost O_APPEND in the snapshot: flags $(flags 7)"
"$FP" exec app -c 'printf "%010d" 1 >&7' || fail "append after snap"
[[ $(pos 7) == 60 ]] || fail "offset after an append: $(pos 7)"
"$FP" restore app s1 >/dev/null || fail "restore"
[[ $(pos 7) == 50 && $(pos 8) == 3 ]] || fail "after restore: offsets $(pos 7) $(pos 8)"
[[ $("$FP" exec app -c 'read -n 3 y <&8; echo $y; wc -c <log') == $'def\n50' ]] || fail "files after restore"
"$FP" stop app
echo ok
