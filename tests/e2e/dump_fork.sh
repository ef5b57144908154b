# --leave-running through a frozen copy-on-write copy: areas a fork does not
# copy as they are (MADV_WIPEONFORK, MADV_DONTFORK, mlock) still land in the
# image with their contents, the copy never outlives the dump (no child is
# left), the target runs on unharmed, and the image restores with CRIU.
# --pages copy still works and gives the same pages.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
need_criu
start_ct fc "$T/dump_forkcases"
ct_verify fc 1
"$FP" dump -R -v -t "$PID" -D "$WORK/f1" >"$WORK/out1" || fail "dump failed: $(cat "$WORK/out1")"
grep -q 'pages by fork' "$WORK/out1" || fail "not through a frozen copy: $(cat "$WORK/out1")"
log=$WORK/f1/dump.log
grep -q 'frozen copy .* made' "$log" || fail "no frozen copy in the log"
grep -q 'locked memory' "$log" || fail "mlock not noticed: $(grep -i copy "$log")"
grep -q "area .* not in the copy" "$log" || fail "MADV_DONTFORK area not noticed"
n=$(grep -c "has pages the copy lacks" "$log")
((n >= 2)) || fail "WIPEONFORK/DONTFORK areas not copied while stopped ($n)"
grep -q 'reaped in' "$log" || fail "the copy was not reaped: $(grep -i 'copy' "$log" | tail -n 3)"
[[ -z $(ps -o pid= --ppid "$PID") ]] || fail "children left: $(ps -o pid,stat,comm --ppid "$PID")"
"$FP" decompress --verify "$WORK/f1" || fail "f1 does not verify"
ct_verify fc 2

# The same pages by copying while stopped.
"$FP" dump -R -t "$PID" -D "$WORK/f2" --pages copy >"$WORK/out2" || fail "--pages copy failed"
grep -q 'pages by copy' "$WORK/out2" || fail "not by copy: $(cat "$WORK/out2")"
h1=$(grep '^pages ' "$WORK/f1/forkpoint.manifest"); h2=$(grep '^pages ' "$WORK/f2/forkpoint.manifest")
[[ $h1 == "$h2" ]] || echo "note: page sets differ between fork and copy ('$h1' vs '$h2'): stack/heap moved between dumps"
ct_verify fc 3

# No room for one more process (pids cgroup full): the clone fails and the
# dump falls back to copying while stopped, and says so.
cg=/sys/fs/cgroup/pids/fp-test-$$
if [[ -d /sys/fs/cgroup/pids ]] && mkdir "$cg" 2>/dev/null; then
	echo "$PID" >"$cg/cgroup.procs"
	cat "$cg/pids.current" >"$cg/pids.max"
	"$FP" dump -R -t "$PID" -D "$WORK/f3" >"$WORK/out3"; rc=$?
	echo "$PID" >/sys/fs/cgroup/pids/cgroup.procs; rmdir "$cg"
	((rc == 0)) || fail "dump with a full pids cgroup failed: $(cat "$WORK/out3")"
	grep -q 'pages by copy' "$WORK/out3" || fail "expected the copy fallback: $(cat "$WORK/out3")"
	grep -q 'clone in the target failed' "$WORK/f3/dump.log" || fail "the fallback is not logged"
	ct_verify fc 4
else
	echo "no pids cgroup: fallback test skipped"
fi

# The fork image restores with CRIU and checks its memory.
kill -9 "$PID"; wait_gone "$PID"
criu_restore "$WORK/f1"
alive "$PID" || fail "restored process is not running"
# It counts verifications from where it was dumped: wait for a new line.
before=$(grep -c '^verify ' "$WORK/fc.st")
kill -USR2 "$PID"
wait_for 30 bash -c "(( \$(grep -c '^verify ' '$WORK/fc.st') > $before ))" || fail "restored target does not answer"
tail -n 1 "$WORK/fc.st" | grep -q '^verify [0-9]* ok' || fail "restored target: $(tail -n 1 "$WORK/fc.st")"
# and a dump of the restored process works the same way
"$FP" dump -R -t "$PID" -D "$WORK/f4" >"$WORK/out4" || fail "dump of the restored process: $(cat "$WORK/out4")"
grep -q 'pages by fork' "$WORK/out4" || fail "restored process: $(cat "$WORK/out4")"

# Threads: the copy is made from one thread; every thread's state is in the
# image and the restored process checks itself.
TH=$T/ct_threads; [[ -x $TH ]] || TH=$T/dump_threads
start_ct th "$TH"
ct_verify th 1
"$FP" dump -R -t "$PID" -D "$WORK/th" >"$WORK/out5" || fail "threads: $(cat "$WORK/out5")"
grep -q 'pages by fork' "$WORK/out5" || fail "threads: $(cat "$WORK/out5")"
ct_verify th 2
kill -9 "$PID"; wait_gone "$PID"
criu_restore "$WORK/th"
before=$(grep -c '^verify ' "$WORK/th.st")
kill -USR2 "$PID"
wait_for 30 bash -c "(( \$(grep -c '^verify ' '$WORK/th.st') > $before ))" || fail "restored threads do not answer"
tail -n 1 "$WORK/th.st" | grep -q '^verify [0-9]* ok' || fail "restored threads: $(tail -n 1 "$WORK/th.st")"

# A process tree (bash and a child sharing a pipe): one copy per process,
# all reaped; the tree runs on, then restores from the image.
mkfifo "$WORK/bfifo"
(cd "$WORK" && exec setsid bash -c 'exec 3> >(exec cat > '"$WORK"'/bash.out); V=hello-fork; while read -r cmd < '"$WORK"'/bfifo; do eval "$cmd"; done' </dev/null >/dev/null 2>&1 &)
wait_for 10 pgrep -f "V=hello-fork" >/dev/null || fail "bash did not start"
BP=$(pgrep -f "V=hello-fork" | head -n 1); track_pid "$BP"
wait_for 10 grep -q "[0-9]" "/proc/$BP/task/$BP/children" || fail "bash has no child"
CP=$(tr -d " \n" < "/proc/$BP/task/$BP/children"); track_pid "$CP"
"$FP" dump -R -v -t "$BP" -D "$WORK/bash" >"$WORK/out6" || fail "tree: $(cat "$WORK/out6")"
grep -q '2 processes' "$WORK/out6" && grep -q 'pages by fork' "$WORK/out6" || fail "tree: $(cat "$WORK/out6")"
(( $(grep -c 'reaped in' "$WORK/bash/dump.log") == 2 )) || fail "tree: not every copy was reaped"
[[ $(cat "/proc/$BP/task/$BP/children") == "$CP " || $(cat "/proc/$BP/task/$BP/children") == "$CP" ]] ||
	fail "tree: bash has other children now: $(cat "/proc/$BP/task/$BP/children")"
[[ -z $(ps -o pid= --ppid "$CP") ]] || fail "tree: the child has children now"
echo 'echo before-$V >&3' > "$WORK/bfifo"
wait_for 10 grep -q before-hello-fork "$WORK/bash.out" || fail "bash does not answer after the dump"
kill -9 "$BP" "$CP"; wait_gone "$BP"; wait_gone "$CP"
criu_restore "$WORK/bash"
echo 'echo after-$V >&3' > "$WORK/bfifo"
wait_for 10 grep -q after-hello-fork "$WORK/bash.out" || fail "restored bash (or its child) did not answer"
echo ok
