# forkpoint dump -> criu restore: each target proves its own state afterwards.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"
need_criu

# ct_heap, 100 MiB, uncompressed: plain criu restore straight away.
start_ct heap "$T/ct_heap" --mib=100
ct_verify heap 1
"$FP" dump -t "$PID" -D "$WORK/heap" --compress none >/dev/null || fail "dump of ct_heap failed"
[[ -f $WORK/heap/forkpoint.manifest && -f $WORK/heap/pages-1.img ]] || fail "snapshot incomplete: $(ls "$WORK/heap")"
[[ $(stat -c %a "$WORK/heap") == 700 && $(stat -c %a "$WORK/heap/core-$PID.img") == 600 ]] || fail "snapshot not owner-only"
wait_gone "$PID"
criu_restore "$WORK/heap"
ct_verify heap 2

# Threads (futex, nanosleep, read, computing), zstd + decompress.
TH=$T/ct_threads; [[ -x $TH ]] || TH=$T/dump_threads
start_ct threads "$TH"
ct_verify threads 1
"$FP" dump -t "$PID" -D "$WORK/threads" >/dev/null || fail "dump of threads failed"
[[ -f $WORK/threads/pages-1.fpz ]] || fail "zstd dump has no pages-1.fpz"
wait_gone "$PID"
criu_restore "$WORK/threads"
ct_verify threads 2

# Files: offsets, O_APPEND, pipe with queued data, private and shared maps.
FI=$T/dump_files
start_ct files "$FI"
ct_verify files 1
"$FP" dump -t "$PID" -D "$WORK/files" --compress none >/dev/null || fail "dump of files target failed"
[[ -f $WORK/files/pipes-data.img ]] || fail "no pipes-data.img for a pipe holding data"
wait_gone "$PID"
criu_restore "$WORK/files"
ct_verify files 2
ct_verify files 3

# An idle bash with a child (process substitution) sharing a pipe with it.
# A read that meets EOF (a writer that opened and closed the fifo without a
# full line reaching this open) loops instead of ending bash:
# a process tree; a variable set before the dump is echoed after restore.
mkfifo "$WORK/bfifo"
(cd "$WORK" && exec setsid bash -c 'exec 3> >(exec cat > '"$WORK"'/bash.out); V=hello-bash; while :; do read -r cmd < '"$WORK"'/bfifo || continue; eval "$cmd"; done' </dev/null >/dev/null 2>&1 &)
wait_for 10 pgrep -f "V=hello-bash" >/dev/null || fail "bash did not start"
BP=$(pgrep -f "V=hello-bash" | head -n 1); track_pid "$BP"
wait_for 10 grep -q "[0-9]" "/proc/$BP/task/$BP/children" || fail "bash has no child"
CP=$(tr -d " \n" < "/proc/$BP/task/$BP/children"); track_pid "$CP"
echo 'echo before-$V >&3' > "$WORK/bfifo"
wait_for 10 grep -q before-hello-bash "$WORK/bash.out" || fail "bash did not answer before the dump"
"$FP" dump -t "$BP" -D "$WORK/bash" >/dev/null || fail "dump of bash failed"
[[ -f $WORK/bash/core-$CP.img && -f $WORK/bash/mm-$CP.img ]] || fail "the child $CP was not dumped"
wait_gone "$BP"; wait_gone "$CP"
criu_restore "$WORK/bash"
echo 'echo after-$V >&3' > "$WORK/bfifo"
wait_for 10 grep -q after-hello-bash "$WORK/bash.out" || fail "restored bash (or its child) did not answer"

# An idle python3 reading commands from a FIFO.
mkfifo "$WORK/pfifo"
(cd "$WORK" && exec setsid /usr/bin/python3 -c '
V = {"k": list(range(1000))}
while True:
    with open("'"$WORK"'/pfifo") as f:
        for line in f:
            exec(line)
' </dev/null >/dev/null 2>&1 &)
wait_for 10 pgrep -f "$WORK/pfifo" >/dev/null || fail "python3 did not start"
PP=$(pgrep -f "$WORK/pfifo" | head -n 1); track_pid "$PP"
# idle: blocked opening the FIFO (openat is syscall 257)
wait_for 10 grep -q '^257 ' "/proc/$PP/syscall" || fail "python3 did not reach its idle loop"
"$FP" dump -t "$PP" -D "$WORK/py" >/dev/null || fail "dump of python3 failed"
wait_gone "$PP"
criu_restore "$WORK/py"
echo 'open("'"$WORK"'/py.out","w").write(str(sum(V["k"])))' > "$WORK/pfifo"
wait_for 10 grep -q '^499500$' "$WORK/py.out" || fail "restored python3 lost its state: $(cat "$WORK/py.out" 2>/dev/null)"
echo ok
