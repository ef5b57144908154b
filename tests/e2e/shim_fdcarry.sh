# The fds a session's snapshot read, carried to its next incremental one
# (helper/dump/dump_fdcarry.c): the fds no wrapper touched since come from
# the shim's table and the last snapshot, not from /proc/PID/fd. The same
# deterministic target (tests/e2e/shim_fdcarry.py: 1,500 fds on files,
# /dev/null and dups) runs in two sessions, one with the shortcut and one
# with FORKPOINT_NO_FD_SHORTCUT=1 (every fd read from /proc), and both are
# snapshotted after the same steps of changes: fds closed, dup2'ed over,
# opened, their offsets moved (lseek, read), O_NONBLOCK set through libc and
# O_APPEND through a raw fcntl the shim never sees. After each incremental
# snapshot the two sessions' fd images are equal (crit-decoded: per fd its
# file, flags, offset, and which fds share a description), and restores of
# the carried snapshots pass the target's own check of its fds and offsets.
# Twice: the target as the session's root, and as the root's child (the
# look, the shortcut, the carry and the rollback's marks serve every
# process of the tree).
source "$(dirname "$0")/../lib.sh"

command -v crit >/dev/null || { echo "no crit (CRIU's image tool) to decode the images"; exit 77; }
PY=$ROOT/tests/e2e/shim_fdcarry.py
N=1500

start() { # MODE (carry|proc)
	local mode=$1 env=()
	[[ $mode == proc ]] && env=(FORKPOINT_NO_FD_SHORTCUT=1)
	mkdir -p "$WORK/$mode"
	env FORKPOINT_HOME="$WORK/home-$mode" "${env[@]}" "$FP" run --detach --name fc -- \
		python3 "$PY" "$ROLE" "$WORK/$mode/status" "$WORK/$mode" "$N" >/dev/null || fail "$mode: run"
	track_pid "$(FORKPOINT_HOME=$WORK/home-$mode session_field fc helper_pid)"
	wait_for 60 grep -qs '^ready ' "$WORK/$mode/status" || fail "$mode: not ready: $(cat "$WORK/$mode/status")"
	local pid
	pid=$(awk '/^ready /{print $2}' "$WORK/$mode/status")
	track_pid "$pid"
	echo "$pid" >"$WORK/$mode/pid"
	grep -q libforkpoint-preload "/proc/$pid/maps" || fail "$mode: the shim is not loaded"
}

snap() { # MODE NAME
	FORKPOINT_HOME=$WORK/home-$1 "$FP" snap fc "$2" --json >"$WORK/$1/$2.json" || fail "$1: snap $2"
}

canon() { # MODE NAME
	python3 "$PY" canon "$WORK/home-$1/sessions/fc/snapshots/$2" "$WORK/$1" "$WORK/home-$1" >"$WORK/$1/$2.canon" ||
		fail "$1: decoding $2"
}

target_step() { # K: both targets make step K
	for mode in carry proc; do
		kill -USR1 "$(cat "$WORK/$mode/pid")"
		wait_for 30 grep -qs "^step $1\$" "$WORK/$mode/status" || fail "$mode: step $1 not made"
	done
}

run_role() {
	start carry
	start proc
	snap carry s0
	snap proc s0
	for k in 1 2 3; do
		target_step "$k"
		snap carry "s$k"
		snap proc "s$k"
		log=$WORK/home-carry/sessions/fc/snapshots/s$k/dump.log
		# a child is looked at from the first snapshot after one it
		# lived through (s0): carried from the one after (s2)
		if [[ $ROLE == target-child && $k == 1 ]]; then
			grep -Eq "fds of $(cat "$WORK/carry/pid") looked at before the stop: [0-9]+, .* [1-9][0-9]* followed by the shim's shortcut" \
				"$log" || fail "$ROLE s$k: not looked at: $(grep -E 'carried|look' "$log")"
		else
			grep -Eq "fds of $(cat "$WORK/carry/pid") listed from the shim's table: [0-9]+, [1-9][0-9]* of them carried from the last snapshot" \
				"$log" || fail "$ROLE s$k: nothing carried: $(grep -E 'carried|look' "$log")"
		fi
		grep -q "shim table and /proc disagree" "$log" && fail "s$k: the table disagreed: $(grep disagree "$log")"
		grep -q "carried" "$WORK/home-proc/sessions/fc/snapshots/s$k/dump.log" &&
			fail "s$k: the session without the shortcut carried fds"
		canon carry "s$k"
		canon proc "s$k"
		cmp -s "$WORK/carry/s$k.canon" "$WORK/proc/s$k.canon" ||
			fail "s$k: the fd images differ: $(diff "$WORK/carry/s$k.canon" "$WORK/proc/s$k.canon" | head -20)"
	done
	# the changed fds were read from /proc, the others carried
	grep -E "carried from the last snapshot" "$WORK/home-carry/sessions/fc/snapshots/s3/dump.log" |
		grep -Eq "fds of $(cat "$WORK/carry/pid") listed from the shim's table: ([0-9]+), ([0-9]+) of them" ||
		fail "$ROLE: no carry line"

	verify() { # SNAP: restored, the target checks its fds against its record of SNAP's step
		FORKPOINT_HOME=$WORK/home-carry "$FP" restore fc "$1" >/dev/null || fail "restore $1"
		local pid
		pid=$(cat "$WORK/carry/pid")
		track_pid "$pid"
		local n
		n=$(grep -c '^verify ' "$WORK/carry/status" || true)
		kill -USR2 "$pid"
		wait_for 30 bash -c "(( \$(grep -c '^verify ' '$WORK/carry/status') > $n ))" || fail "$1: no verify answer"
		local line
		line=$(grep '^verify ' "$WORK/carry/status" | tail -1)
		[[ $line == "verify ok step ${1#s}" ]] || fail "$1 restored: $line"
	}
	verify s2
	verify s3
	FORKPOINT_HOME=$WORK/home-carry "$FP" stop --kill fc >/dev/null 2>&1
	FORKPOINT_HOME=$WORK/home-proc "$FP" stop --kill fc >/dev/null 2>&1
	rm -rf "$WORK/carry" "$WORK/proc" "$WORK/home-carry" "$WORK/home-proc"
}

ROLE=target run_role
ROLE=target-child run_role
echo ok
