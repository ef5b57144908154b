# A CRIU that passes `criu --version` and `criu check` but hangs in dump and
# restore, ignoring SIGTERM (what Debian 13's 4.1.1 does on kernels whose
# hardware breakpoints do not trap): setup refuses it within its bounds and
# says why, forkpoint's `--engine criu` fails with a clear message within its
# deadline, and no process of the test is left behind.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (setup, ptrace)"; exit 77; }
mkdir -p "$WORK/bin" "$WORK/home" "$WORK/prefix"
PIDS=$WORK/standin.pids
: >"$PIDS"

# The stand-in: every process it starts writes its pid down first.
cat >"$WORK/bin/criu" <<EOF
#!/bin/sh
trap '' TERM
case "\$1" in
--version) echo "Version: 4.1.1"; exit 0 ;;
check) echo "Looks good."; exit 0 ;;
esac
# Delegates the probe's dump and restore to a real CRIU when one is named,
# so that only the restore of the test's own image hangs.
if [ -n "\${REAL_CRIU:-}" ]; then
	case "\$*" in *forkpoint-criu-probe*) exec "\$REAL_CRIU" "\$@" ;; esac
fi
echo \$\$ >>'$PIDS'
sh -c 'echo \$\$ >>"$PIDS"; trap "" TERM; while :; do sleep 1; done' &
while :; do wait; done
EOF
chmod 0755 "$WORK/bin/criu"

# All the stand-in's processes are dead (gone, or zombies that pid 1 has not
# reaped yet).
all_dead() {
	local p s
	while read -r p; do
		s=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || continue
		[[ $s == Z ]] || return 1
	done <"$PIDS"
}

# 1. Setup, with the stand-in as the system's criu and nothing to download:
# it refuses it within the probe's deadline, says why, and still succeeds.
start=$(date +%s)
rc=0
PATH=$WORK/bin:$PATH FORKPOINT_CRIU_PREFIX=$WORK/prefix/criu FORKPOINT_CRIU_SUITES= \
	FORKPOINT_CRIU_PROBE_TIMEOUT=2 timeout -s KILL 300 bash "$ROOT/scripts/setup.sh" \
	>"$WORK/setup.out" 2>&1 || rc=$?
took=$(($(date +%s) - start))
((rc == 0)) || fail "setup failed (exit $rc) with a hanging CRIU: $(tail -n 5 "$WORK/setup.out")"
grep -q "refused system criu ($WORK/bin/criu).*did not finish within 2 s" "$WORK/setup.out" ||
	fail "setup does not say why it refused the hanging CRIU: $(cat "$WORK/setup.out")"
grep -q "NO WORKING CRIU" "$WORK/setup.out" || fail "setup does not say loudly that there is no CRIU"
grep -q "^chosen: none" "$WORK/prefix/criu-setup.txt" || fail "setup's report: $(cat "$WORK/prefix/criu-setup.txt")"
echo "setup refused the stand-in in ${took} s"
[[ -s $PIDS ]] || fail "the stand-in never ran its dump"
wait_for 15 all_dead || fail "setup left stand-in processes behind: $(cat "$PIDS")"

# An image to restore, made by forkpoint's own dump.
st=$WORK/idle.st
(cd "$WORK" && exec setsid "$T/ct_idle" "$st" </dev/null >/dev/null 2>&1 &)
wait_for 20 grep -qs '^ready' "$st" || fail "ct_idle did not get ready"
pid=$(awk '/^ready/{print $2}' "$st")
track_pid "$pid"
"$FP" dump -t "$pid" -D "$WORK/img" --compress none >/dev/null || fail "dump of ct_idle"
wait_for 15 test ! -e "/proc/$pid" || fail "$pid still exists after the dump"

# 2. forkpoint with the stand-in named explicitly: the verdict setup's run
# left in the cache refuses it at once; with no cache, the probe's own
# deadline does. Either way the message says what is wrong.
export FORKPOINT_CRIU=$WORK/bin/criu FORKPOINT_CRIU_PROBE_TIMEOUT=2
for cache in kept dropped; do
	[[ $cache == dropped ]] && rm -f "$WORK/home/criu-check.cache"
	: >"$PIDS"
	rc=0
	out=$(timeout -s KILL 60 "$FP" restore -D "$WORK/img" --engine criu -d 2>&1) || rc=$?
	((rc == 4)) || fail "restore --engine criu with a hanging CRIU ($cache cache): exit $rc: $out"
	echo "$cache cache: $out"
	[[ $out == *FORKPOINT_CRIU*"did not finish within 2 s"* ]] ||
		fail "unclear refusal ($cache cache): $out"
	[[ -e /proc/$pid ]] && fail "a process was restored although CRIU was refused"
	wait_for 15 all_dead || fail "the probe left stand-in processes behind: $(cat "$PIDS")"
done

# 3. A CRIU that passes the probe (delegated to the real one) but hangs on
# the restore itself: the restore's deadline kills it, and all it started.
if FORKPOINT_CRIU= find_criu; then
	export REAL_CRIU=$CRIU
	rm -f "$WORK/home/criu-check.cache"
	: >"$PIDS"
	rc=0
	out=$(timeout -s KILL 120 "$FP" restore -D "$WORK/img" --engine criu -d --timeout 3 2>&1) || rc=$?
	echo "hanging restore: $out"
	((rc == 5)) || fail "a hanging criu restore: exit $rc (want 5, timed out): $out"
	[[ $out == *"did not finish within 3.0 s; killed it"* ]] || fail "unclear timeout message: $out"
	[[ -s $PIDS ]] || fail "the stand-in's restore never ran"
	wait_for 15 all_dead || fail "the timed-out restore left processes behind: $(cat "$PIDS")"
else
	skip_part "a CRIU that passes the probe but hangs in restore"
fi
echo ok
