# A mapping's flags changed in place between two incremental snapshots are
# in the second one. madvise(MADV_DONTDUMP) over a whole mapping changes its
# VmFlags without splitting it (its /proc/PID/maps line stays the same), so
# only the flags themselves tell: the check after the resume compares the
# kernel's vm_flags (a BPF iterator, dump_vmflags_bpf.c) with those of the
# last read, and must send this snapshot to smaps, find the change and take
# it again with the flags of its stop. The snapshot before must have passed
# its check by the kernel's flags alone (dump.log says so), or the path is
# not exercised (skipped when BPF cannot be loaded here).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"
CRIT=${CRIT:-/usr/bin/crit}
[[ -x $CRIT ]] || { echo "no crit at $CRIT"; exit 77; }

st=$WORK/vmf.st
cat >"$WORK/vmf.py" <<'PY'
import ctypes, mmap, signal, sys
st = sys.argv[1]
m = mmap.mmap(-1, 128 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, len(m), 4096):
    m[i] = 1
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
def step(s, f):
    m.madvise(mmap.MADV_DONTDUMP)
    open(st, "a").write("madvised\n")
def touch(s, f):
    for i in range(0, len(m), 4096 * 97):
        m[i] = (m[i] + 1) & 0xff
    open(st, "a").write("touched\n")
signal.signal(signal.SIGUSR1, step)
signal.signal(signal.SIGUSR2, touch)
open(st, "a").write("ready %x\n" % addr)
while True:
    signal.pause()
PY
"$FP" run --detach --name vf -- python3 "$WORK/vmf.py" "$st" >/dev/null || fail "run"
track_pid "$(session_field vf helper_pid)"
wait_for 20 grep -q '^ready ' "$st" || fail "target not ready: $(cat "$st")"
pid=$(session_field vf target_pid)
track_pid "$pid"
addr=$(awk '/^ready/ {print $2}' "$st")
S=$FORKPOINT_HOME/sessions/vf/snapshots
line() { python3 -c '
import sys
a = int(sys.argv[1], 16)
for l in open("/proc/%s/maps" % sys.argv[2]):
    s, e = (int(x, 16) for x in l.split()[0].split("-"))
    if s <= a < e: print(l.split()[0])' "$addr" "$pid"; }
before=$(line)

# the BPF iterator is loaded beside the first snapshots (its BTF read takes
# 0.1-0.6 s): snapshots until one passes its check by the kernel's flags
# (the last, c), 20 at most
for i in $(seq 1 20); do
	s=s$i
	snap_json vf "$s" "$WORK/$s.json"
	c0=$(grep -c '^touched' "$st")
	kill -USR2 "$pid"
	wait_for 20 bash -c "(( \$(grep -c '^touched' '$st') > $c0 ))" || fail "no step after $s"
	((i >= 3)) && grep -q 'VmFlags unchanged since they were read by the kernel' "$S/$s/dump.log" && break
done
C=$S/$s
cp "$WORK/$s.json" "$WORK/c.json"
[[ $(json_field "$WORK/c.json" full) == False ]] || fail "snapshot c is not incremental"
bits=1
grep -q 'VmFlags unchanged since they were read by the kernel' "$C/dump.log" || bits=0

kill -USR1 "$pid"
wait_for 20 grep -q '^madvised' "$st" || fail "the target did not madvise"
after=$(line)
[[ $before == "$after" ]] || echo "note: the mapping's maps line changed ($before -> $after): not the in-place case"
grep -q 'dd' <(awk -v a="$after" '$1 == a {f=1} f && /^VmFlags/ {print; exit}' "/proc/$pid/smaps") || fail "no dd flag in smaps"

snap_json vf d "$WORK/d.json"
"$CRIT" decode -i "$S/d/mm-$pid.img" >"$WORK/mm.json" 2>"$WORK/crit.err" || fail "crit: $(tail -n 3 "$WORK/crit.err")"
python3 - "$WORK/mm.json" "$addr" <<'PY' || fail "the snapshot after the madvise lacks MADV_DONTDUMP on the mapping"
import json, sys
mm = json.load(open(sys.argv[1]))["entries"][0]
a = int(sys.argv[2], 16)
for v in mm["vmas"]:
    s, e = int(str(v["start"]), 0), int(str(v["end"]), 0)
    if s <= a < e:
        madv = int(str(v.get("madv", 0)), 0)
        assert madv & (1 << 16), v  # MADV_DONTDUMP
        sys.exit(0)
sys.exit("no vma at the mapping")
PY
if [[ $bits == 0 ]]; then
	echo "the check by the kernel's flags was not used here: $(grep -h "VmFlags checked\|VmFlags check after" "$C"/dump.log | tr "\n" " ")"
	exit 77
fi
echo "ok"
