# Nothing forkpoint writes follows a planted link, and state directories
# another user controls are refused: the restore log's default is private
# (never the image directory), -o through another user's link is refused,
# an image file that is a link is refused, restore -D of a directory that
# is not an image writes nothing into it, and FORKPOINT_HOME or a session
# directory that is someone else's or writable by others is refused.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (chown of planted links, restores with the image's pids)"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "no user 'nobody' to own the planted links"; exit 77; }

victim=$WORK/victim; echo precious >"$victim"
plant() { ln -s "$victim" "$1" && chown -h nobody "$1"; }
untouched() { [[ $(cat "$victim") == precious ]] || fail "the victim file was written through $1"; }

st=$WORK/heap.st
(exec setsid "$T/ct_heap" "$st" --mib=4 --quiet-stdio </dev/null >/dev/null 2>&1 &)
wait_for 20 grep -q '^ready' "$st" || fail "ct_heap not ready"
pid=$(awk '/^ready/{print $2; exit}' "$st"); track_pid "$pid"
img=$WORK/img
"$FP" dump -t "$pid" -D "$img" -o "$WORK/dump.log" >/dev/null || fail "dump: $(cat "$WORK/dump.log")"
wait_for 15 test ! -e "/proc/$pid" || fail "$pid still there after the dump"

# The dump's -o through another user's link: refused, nothing written.
(exec setsid "$T/ct_heap" "$WORK/h2.st" --mib=4 --quiet-stdio </dev/null >/dev/null 2>&1 &)
wait_for 20 grep -q '^ready' "$WORK/h2.st" || fail "second ct_heap not ready"
p2=$(awk '/^ready/{print $2; exit}' "$WORK/h2.st"); track_pid "$p2"
plant "$WORK/dlog"
out=$("$FP" dump -t "$p2" -D "$WORK/img2" -o "$WORK/dlog" --leave-running 2>&1) && fail "dump wrote its log through a planted link"
[[ $out == *"symbolic link"* ]] || fail "dump -o link: $out"
untouched "dump -o"
v=$(ct_verify "$WORK/h2.st" "$p2") || fail "the dump's target was harmed: $v"
kill -9 "$p2"

# restore -D without -o: the planted DIR/restore.log is not touched.
plant "$img/restore.log"
rpid=$("$FP" restore -D "$img" -d 2>"$WORK/r.err") || fail "restore: $(cat "$WORK/r.err")"
untouched "the default restore log"
[[ $rpid == "$pid" ]] || fail "restored pid $rpid, expected $pid"
ls "$FORKPOINT_HOME"/logs/restore-*.log >/dev/null 2>&1 || fail "no restore log in \$FORKPOINT_HOME/logs"
v=$(ct_verify "$st" "$pid") || fail "restored target: $v"
kill -9 "$pid"; wait_for 15 test ! -e "/proc/$pid" || fail "$pid not gone"

# -o through another user's link: refused before anything is created.
out=$("$FP" restore -D "$img" -d -o "$img/restore.log" 2>&1) && fail "restore wrote its log through a planted link"
[[ $out == *"symbolic link"* ]] || fail "restore -o link: $out"
untouched "restore -o"
[[ ! -e /proc/$pid ]] || fail "a refused restore made pid $pid"
rm "$img/restore.log"

# An image file that is a link (to a copy of itself) is refused.
mv "$img/files.img" "$WORK/files.img"; ln -s "$WORK/files.img" "$img/files.img"
out=$("$FP" restore -D "$img" -d 2>&1) && fail "an image with a linked files.img was restored"
[[ $out == *"symbolic link"* ]] || fail "linked image file: $out"
rm "$img/files.img"; mv "$WORK/files.img" "$img/files.img"

# A directory that is not an image gets nothing written into it.
mkdir "$WORK/notimg"
out=$("$FP" restore -D "$WORK/notimg" -d 2>&1) && fail "restored a directory that is no image"
[[ -z $(ls -A "$WORK/notimg") ]] || fail "restore -D wrote into a non-image directory: $(ls -A "$WORK/notimg")"
if [[ ! -e /etc/restore.log ]]; then
	"$FP" restore -D /etc -d >/dev/null 2>&1 && fail "restored /etc"
	[[ ! -e /etc/restore.log ]] || { rm -f /etc/restore.log; fail "restore -D /etc wrote /etc/restore.log"; }
fi

# FORKPOINT_HOME: someone else's, or writable by others, is refused.
other=$WORK/other-home; mkdir -m 700 "$other"; chown nobody "$other"
out=$(FORKPOINT_HOME=$other "$FP" ps 2>&1) && fail "used a FORKPOINT_HOME owned by nobody: $out"
[[ $out == *"belongs to uid"* ]] || fail "foreign FORKPOINT_HOME: $out"
open=$WORK/open-home; mkdir "$open"; chmod 777 "$open"
out=$(FORKPOINT_HOME=$open "$FP" ps 2>&1) && fail "used a world-writable FORKPOINT_HOME: $out"
[[ $out == *"writable by others"* ]] || fail "world-writable FORKPOINT_HOME: $out"
ln -s "$WORK/home" "$WORK/home-link"; chown -h nobody "$WORK/home-link"
out=$(FORKPOINT_HOME=$WORK/home-link "$FP" ps 2>&1) && fail "used FORKPOINT_HOME through another user's link: $out"
[[ $out == *"symbolic link"* ]] || fail "FORKPOINT_HOME through a foreign link: $out"

# A session directory that is someone else's is refused.
mkdir -p "$FORKPOINT_HOME/sessions/planted/snapshots"
chown nobody "$FORKPOINT_HOME/sessions/planted"
out=$("$FP" list planted 2>&1) && fail "listed a session directory owned by nobody: $out"
[[ $out == *"belongs to uid"* ]] || fail "foreign session directory: $out"
untouched "all of the above"
echo ok
