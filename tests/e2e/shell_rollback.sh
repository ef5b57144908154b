# `restore SESSION SNAP` of a shell session rolls back in place: the shell's
# pty is the helper's own, so the same bash stays, its variables, cwd and
# functions go back to SNAP's, and so do its terminal's modes (changed here
# with stty on the shell's own terminal). An exec running when the shell is
# rolled back is answered as restored over, and the next exec works.
source "$(dirname "$0")/../lib.sh"
command -v bash >/dev/null || { echo "no bash"; exit 77; }
command -v stty >/dev/null || { echo "no stty"; exit 77; }

"$FP" run --shell --name rb >/dev/null || fail "run --shell"
track_pid "$(session_field rb helper_pid)"
shell=$(session_field rb target_pid)
x() { "$FP" exec rb --timeout 60 "$@"; }
modes() { x -c 'stty -a </dev/tty | tr " " "\n" | grep -x -- "-\{0,1\}icanon"'; }

x -c 'X=snap; cd /tmp' || fail "set up"
[[ $(modes) == icanon ]] || fail "the shell's terminal is not canonical to begin with: $(modes)"
"$FP" snap rb s1 >/dev/null || fail "snap s1"
x -c 'X=later; cd /; f() { echo f; }; stty -icanon </dev/tty' || fail "change the state"
[[ $(modes) == -icanon ]] || fail "stty did not change the terminal's modes: $(modes)"

out=$("$FP" restore rb s1 --json) || fail "restore s1: $out"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["in_place"] is True and d["engine"] == "in-place", d' "$out" ||
	fail "the shell session was not rolled back in place: $out"
[[ $(session_field rb target_pid) == "$shell" && -e /proc/$shell ]] || fail "the shell is not the same process"
[[ $(x -c 'echo $X $(pwd)') == "snap /tmp" ]] || fail "state after the rollback: $(x -c 'echo $X $(pwd)')"
x -c 'type f' >/dev/null 2>&1 && fail "a function defined after SNAP is still there"
[[ $(modes) == icanon ]] || fail "the terminal's modes are not SNAP's: $(modes)"

# A rollback while an exec runs (a builtin loop: the same processes as SNAP).
"$FP" exec rb -c 'echo started >&2; while :; do :; done' 2>"$WORK/loop.err" & client=$!
wait_for 20 grep -q started "$WORK/loop.err" || fail "the loop did not start"
out=$("$FP" restore rb s1 --json) || fail "restore during an exec: $out"
wait $client && fail "the exec rolled back over succeeded"
grep -q "restored to a snapshot while this command ran" "$WORK/loop.err" || fail "message: $(cat "$WORK/loop.err")"
[[ $(x -c 'echo $X') == snap ]] || fail "exec after a rollback during an exec"

# An fd closed since SNAP, which is then the lowest free number: reopening
# it lands on that number itself (no dup3 onto itself), at SNAP's offset.
printf 'one\ntwo\n' >"$WORK/lines"
x -c "exec 3<'$WORK/lines'; read -u 3 l; echo \$l" >/dev/null || fail "open fd 3"
"$FP" snap rb s2 >/dev/null || fail "snap s2"
x -c 'exec 3<&-' || fail "close fd 3"
out=$("$FP" restore rb s2 --json) || fail "restore with fd 3 closed since SNAP: $out"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["in_place"] is True, d' "$out" || fail "not in place: $out"
[[ $(x -c 'read -u 3 l; echo $l') == two ]] || fail "fd 3 after the rollback: $(x -c 'ls -l /proc/$$/fd/3; read -u 3 l; echo $l' 2>&1)"
echo ok
