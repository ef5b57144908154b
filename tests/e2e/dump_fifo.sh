# Named FIFOs: a shell fed commands through a FIFO is dumped and restored
# and keeps reading the same FIFO; a process holding a FIFO three ways
# (read-write, read, write) with bytes queued in it gets the same
# descriptors and the bytes back. Natively and through CRIU, both ways.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/dump_common.inc"

# 1. bash reading its commands from a FIFO we write to.
mkfifo "$WORK/cmds"
(cd "$WORK" && exec setsid bash --norc --noprofile <"$WORK/cmds" >"$WORK/out" 2>&1 & echo $! >"$WORK/bash.pid")
exec 3>"$WORK/cmds" # lets bash's open return
BP=$(cat "$WORK/bash.pid"); track_pid "$BP"
echo 'X=one; echo "got $X"' >&3
wait_for 20 grep -q "got one" "$WORK/out" || fail "bash did not run the first command: $(cat "$WORK/out")"
"$FP" dump -t "$BP" -D "$WORK/sh" >/dev/null || fail "dump of a FIFO-fed bash: $(tail -n 3 "$WORK/sh.failed.log" 2>/dev/null)"
wait_gone "$BP"
"$FP" restore -D "$WORK/sh" -d --engine native >/dev/null || fail "native restore of the FIFO-fed bash"
echo 'echo "still $X"' >&3
wait_for 20 grep -q "still one" "$WORK/out" || fail "the restored bash does not read the FIFO: $(cat "$WORK/out")"

# 2. Three descriptors on one FIFO with bytes queued.
mkfifo "$WORK/f"
(cd "$WORK" && exec setsid bash -c 'exec 3<>f 4<f 5>f; printf queued-bytes >&5; exec sleep 600' </dev/null >/dev/null 2>&1 & echo $! >"$WORK/h.pid")
HP=$(cat "$WORK/h.pid"); track_pid "$HP"
wait_for 20 bash -c "[[ \$(readlink /proc/$HP/exe) == */sleep ]]" || fail "the FIFO holder did not start"
flags() { for f in 3 4 5; do awk '/^flags/ {print $2}' "/proc/$1/fdinfo/$f"; done | tr '\n' ' '; }
want=$(flags "$HP")
check_holder() { # WHAT
	[[ $(flags "$HP") == "$want" ]] || fail "$1: FIFO fd flags were $want, now $(flags "$HP")"
	[[ $(readlink "/proc/$HP/fd/4") == "$WORK/f" ]] || fail "$1: fd 4 is $(readlink "/proc/$HP/fd/4")"
	# A reader of our own takes the queued bytes out; put them back after.
	got=$(timeout 5 head -c 12 "/proc/$HP/fd/4") || true
	[[ $got == queued-bytes ]] || fail "$1: the FIFO held '$got'"
	printf queued-bytes >"/proc/$HP/fd/5"
}
"$FP" dump -t "$HP" -D "$WORK/h" >/dev/null || fail "dump of the FIFO holder: $(tail -n 3 "$WORK/h.failed.log" 2>/dev/null)"
wait_gone "$HP"
"$FP" restore -D "$WORK/h" -d --engine native >/dev/null || fail "native restore of the FIFO holder"
check_holder "native restore"
PID=$HP criu_both_ways "$WORK/h" check_holder
exec 3>&-
echo ok
