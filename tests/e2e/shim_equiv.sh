# A snapshot of a program run with the shim equals one of the same program run
# without it (`forkpoint run --no-shim`), taken at the same point (the shim's
# one takes fds through the table's shortcut at the stop, dump_fdshort.c): every image
# decoded with crit, then pids, addresses, dumper ids, pipe inodes, the
# session home and the environment normalised (tests/e2e/shim_equiv.py says
# exactly what). The shim adds no fd, no mapping and no file of its own; its
# loaded object (the library and its .bss, where the table lives) is listed
# apart and must be nothing but that object.
source "$(dirname "$0")/../lib.sh"

command -v crit >/dev/null || { echo "no crit (CRIU's image tool) to decode the images"; exit 77; }
SHIM=$BUILD/lib/libforkpoint-preload.so
SHIM_REAL=$(readlink -f "$SHIM")

snapshot() { # MODE (shim|noshim): runs ct_files, snaps it, leaves the images in $WORK/img-MODE
	local mode=$1 home=$WORK/home-$1 opt=()
	[[ $mode == noshim ]] && opt=(--no-shim)
	rm -rf "$WORK/files"
	: >"$WORK/status"
	FORKPOINT_HOME=$home "$FP" run --detach --name eq "${opt[@]}" -- \
		"$T/ct_files" "$WORK/status" --dir="$WORK/files" --quiet-stdio >/dev/null || fail "$mode: run"
	local hpid pid
	hpid=$(FORKPOINT_HOME=$home "$FP" ps --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["helper_pid"])')
	track_pid "$hpid"
	wait_for 20 grep -q '^ready ' "$WORK/status" || fail "$mode: ct_files never got ready: $(cat "$WORK/status")"
	pid=$(awk '/^ready /{print $2}' "$WORK/status")
	track_pid "$pid"
	echo "$pid" >"$WORK/$mode.pid"
	if [[ $mode == shim ]]; then
		grep -q libforkpoint-preload "/proc/$pid/maps" || fail "shim run: the shim is not loaded"
	else
		grep -q libforkpoint-preload "/proc/$pid/maps" && fail "--no-shim run: the shim is loaded"
	fi
	FORKPOINT_HOME=$home "$FP" snap eq >/dev/null || fail "$mode: snap"
	cp -r "$home/sessions/eq/snapshots/snap-1" "$WORK/img-$mode"
	if [[ $mode == shim ]]; then
		# the images below come through the table's shortcut at the stop
		grep -Eq "fds read while stopped .*, [1-9][0-9]* of them by the shim's shortcut" "$WORK/img-$mode/dump.log" ||
			fail "shim run: the shortcut took no fd: $(grep -E 'shortcut|while stopped' "$WORK/img-$mode/dump.log")"
		grep -q "shim table and /proc disagree" "$WORK/img-$mode/dump.log" &&
			fail "shim run: the table disagreed: $(grep disagree "$WORK/img-$mode/dump.log")"
	fi
	ct_verify "$WORK/status" "$pid" >/dev/null || fail "$mode: the target is harmed after the snapshot"
	FORKPOINT_HOME=$home "$FP" stop --kill eq >/dev/null 2>&1
	python3 "$ROOT/tests/e2e/shim_equiv.py" "$WORK/img-$mode" "$home" "$SHIM_REAL" \
		>"$WORK/$mode.json" 2>"$WORK/$mode.err" || fail "$mode: decoding the images: $(tail -3 "$WORK/$mode.err")"
}

snapshot shim
snapshot noshim

python3 - "$WORK/shim.json" "$WORK/noshim.json" "$(cat "$WORK/shim.pid")" "$(cat "$WORK/noshim.pid")" <<'PY' || fail "the snapshots differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
# the status file starts with "ready PID": its offset counts the pid's digits
def unpid(o, digits):
    if isinstance(o, dict):
        if str(o.get('name', '')).endswith('/status') and isinstance(o.get('pos'), int):
            o['pos'] -= digits
        for v in o.values():
            unpid(v, digits)
    elif isinstance(o, list):
        for v in o:
            unpid(v, digits)
unpid(a, len(sys.argv[3]))
unpid(b, len(sys.argv[4]))
obj = [o for p in a['processes'] for o in p.pop('shim_object')]
for p in b['processes']:
    assert not p.pop('shim_object'), 'the run without the shim has a shim object'
# the shim's object: its library's own VMAs (text, data) and its .bss
assert obj and all(o['file'] for o in obj[:-1]), obj
print('shim object: %d VMAs, %d KiB, %d pages dumped' % (
    len(obj), sum(o['size'] for o in obj) // 1024, sum(o['pages'] for o in obj)))
if a != b:
    import difflib
    da = json.dumps(a, indent=1, sort_keys=True).splitlines()
    db = json.dumps(b, indent=1, sort_keys=True).splitlines()
    for line in list(difflib.unified_diff(da, db, 'with shim', 'without', n=4))[:80]:
        print(line)
    sys.exit(1)
n = a['processes'][0]
print('equal: %d fds, %d VMAs, %d threads' % (len(n['fds']), len(n['vmas']), len(n['cores'])))
PY
echo ok
