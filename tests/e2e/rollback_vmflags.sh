# A rollback in place keeps the mappings it does not need to change, so
# their flags must be SNAP's (helper/session/rollback_vmflags.c): madvise
# and mlock change a mapping's flags without a trace in /proc/PID/maps. A
# Python program holds a buffer (96 MiB: past the size whose flags a
# snapshot reads at its stop) and a small second one made MADV_DONTFORK at
# its start; per command (SIGUSR1) it marks the buffer DONTFORK, half of it
# HUGEPAGE, mlocks it, maps it anew as DONTDUMP, or unmaps the second one,
# and it reports (SIGUSR2) both buffers' VmFlags from smaps. Each change
# makes the rollback a full restore that says why, after which the report
# is SNAP's; writing memory only stays in place. Twice: with the kernel's
# flags kept by each snapshot (compared by a BPF read), and without them
# (FP_DUMP_VMFLAGS_SMAPS: both sides read smaps).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/incr_common.inc"

st=$WORK/status
cat >"$WORK/vf.py" <<'PY'
import ctypes, os, signal, sys
status, work, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
for f in (libc.madvise, libc.mlock, libc.munmap):
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t] + ([ctypes.c_int] if f is libc.madvise else [])
PRIVATE_ANON, FIXED = 0x22, 0x10
def say(line):
    with open(status, "a") as f:
        f.write(line + "\n")
def mapped(size, at=None):
    a = libc.mmap(at, size, 3, PRIVATE_ANON | (FIXED if at else 0), -1, 0)
    assert a and a != ctypes.c_void_p(-1).value, ctypes.get_errno()
    ctypes.memset(a, 7, size // 2)
    return a
def advise(a, size, adv):
    assert libc.madvise(a, size, adv) == 0, ctypes.get_errno()
size, size2 = mib << 20, 1 << 20
buf, buf2 = mapped(size), mapped(size2)
advise(buf2, size2, 10)  # MADV_DONTFORK, before any snapshot
def act(*_):
    what = open(os.path.join(work, "act")).read().strip()
    if what == "memory":
        ctypes.memset(buf + 4096, 9, 1 << 20)
    elif what == "dontfork":
        advise(buf, size, 10)
    elif what == "hugehalf":
        advise(buf, size // 2, 14)  # MADV_HUGEPAGE: the mapping splits
    elif what == "mlock":
        assert libc.mlock(buf, size) == 0, ctypes.get_errno()
    elif what == "remap":  # the same range and protection, DONTDUMP
        mapped(size, buf)
        advise(buf, size, 16)
    elif what == "drop2":
        assert libc.munmap(buf2, size2) == 0
    say("did " + what)
def flags(a, size):
    out, cur = [], None
    for line in open("/proc/self/smaps"):
        if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
            s, e = (int(x, 16) for x in line.split()[0].split("-"))
            cur = "%x-%x" % (s - a, e - a) if s < a + size and e > a else None
        elif line.startswith("VmFlags:") and cur:
            out.append(cur + ":" + ",".join(sorted(set(line.split()[1:]) - {"uw"})))
    return " ".join(out) or "none"
def look(*_):
    say("look buf[%s] buf2[%s]" % (flags(buf, size), flags(buf2, size2)))
signal.signal(signal.SIGUSR1, act)
signal.signal(signal.SIGUSR2, look)
say("ready %d" % os.getpid())
while True:
    signal.pause()
PY

why="madvise or mlock"
steps_say() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['steps_ms'])" "$WORK/r.json"; }
session() { # NAME ENV...: the program in a new session, its first snapshots taken
	local name=$1 i
	shift
	rm -f "$st"
	env "$@" "$FP" run --detach --name "$name" -- python3 "$WORK/vf.py" "$st" "$WORK" 96 >/dev/null || fail "run $name"
	track_pid "$(session_field "$name" helper_pid)"
	wait_for 60 grep -qs '^ready ' "$st" || fail "target not ready: $(cat "$st" 2>/dev/null)"
	# the BPF iterator is loaded beside the first snapshot: the ones
	# taken before it keep no flags (a rollback to them reads smaps)
	for i in $(seq 40); do
		"$FP" snap "$name" "w$i" >/dev/null || fail "snap w$i"
		[[ -n $* ]] || ! compgen -G "$FORKPOINT_HOME/sessions/$name/snapshots/w$i/vmflags-*.fpv" >/dev/null || return 0
		[[ -z $* || $i -lt 2 ]] || return 0
	done
	fail "$name: no snapshot kept its mappings' flags in 40"
}
rounds() { # NAME STEP: STEP is the comparison a rollback that stays in place must have made
	sig_round "$1" "$why" memory True
	[[ " $(steps_say) " == *" $2 "* ]] || fail "$1: not compared by $2: $(steps_say)"
	local change
	for change in dontfork hugehalf mlock remap drop2; do
		sig_round "$1" "$why" $change False
	done
	sig_round "$1" "$why" memory True
}

session vf
rounds vf d_vmflags
"$FP" stop --kill vf >/dev/null 2>&1
sig_rounds=0
session vs FP_DUMP_VMFLAGS_SMAPS=1
compgen -G "$FORKPOINT_HOME/sessions/vs/snapshots/*/vmflags-*.fpv" >/dev/null && fail "flags kept without the BPF iterator"
rounds vs d_vmflags_smaps
"$FP" stop --kill vs >/dev/null 2>&1
echo ok
