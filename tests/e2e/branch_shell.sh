# A branch of a --shell session: each branch's bash comes back on a
# pseudo-terminal of its own, and `forkpoint exec BRANCH` runs in the
# snapshot's shell state (cwd, variables, functions) and workspace, apart
# from the original and from the other branches. Stop leaves nothing.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (pid and mount namespaces, overlay)"; exit 77; }
command -v bash >/dev/null || { echo "no bash"; exit 77; }
app=$WORK/app
mkdir -p "$app/sub"
echo "the user's file" >"$app/sub/data"

"$FP" run --shell --workdir "$app" --name sh >/dev/null || fail "run --shell"
track_pid "$(session_field sh helper_pid)"
"$FP" exec sh -c "cd $app/sub && v=seven && f() { echo fun-\$1; }" || fail "set up the shell's state"
"$FP" snap sh s0 >/dev/null || fail "snap s0"
"$FP" exec sh -c 'v=moved-on; cd ..' || fail "the original moves on"

out=$("$FP" branch sh s0 -n 2 --json) || fail "branch of a shell session: $out"
declare -A bp
while read -r n p h; do
	track_pid "$h"
	bp[$n]=$p
done < <(python3 -c 'import json,sys
for b in json.load(sys.stdin): print(b["name"], b["pid"], b["helper_pid"])' <<<"$out")
[[ ${!bp[*]} == *sh-b1* && ${!bp[*]} == *sh-b2* ]] || fail "branch names: ${!bp[*]}"

# Each branch's bash has its own terminal, as its controlling terminal.
orig=$(session_field sh target_pid)
ttys=$(for p in "$orig" "${bp[sh-b1]}" "${bp[sh-b2]}"; do readlink "/proc/$p/fd/0"; done | sort -u | wc -l)
[[ $ttys == 3 ]] || fail "the branches' shells share a terminal: $(for p in "$orig" "${bp[sh-b1]}" "${bp[sh-b2]}"; do readlink "/proc/$p/fd/0"; done)"
for n in sh-b1 sh-b2; do
	p=${bp[$n]}
	[[ $(awk '{print $7}' "/proc/$p/stat") != 0 ]] || fail "$n: bash has no controlling terminal"
done

# The snapshot's shell state in each, and what one does stays in it.
for n in sh-b1 sh-b2; do
	got=$("$FP" exec "$n" -c 'echo $v $(pwd) $(f x) $(cat data)') || fail "exec in $n: $got"
	[[ $got == "seven $app/sub fun-x the user's file" ]] || fail "$n starts from '$got'"
done
"$FP" exec sh-b1 -c 'v=b1; echo b1 > data; cd /; export W=1' || fail "b1 changes its state"
[[ $("$FP" exec sh-b1 -c 'echo $v $W $(pwd)') == "b1 1 /" ]] || fail "b1 lost its own state"
[[ $("$FP" exec sh-b2 -c 'echo $v $(pwd) $(cat data)') == "seven $app/sub the user's file" ]] ||
	fail "b2 sees b1's changes: $("$FP" exec sh-b2 -c 'echo $v $(pwd) $(cat data)')"
[[ $("$FP" exec sh -c 'echo $v $(pwd) $(cat sub/data)') == "moved-on $app the user's file" ]] ||
	fail "the original sees a branch's changes"
# Exit codes and stderr come back from a branch as from any shell session.
"$FP" exec sh-b2 -c 'echo e >&2; (exit 9)' 2>"$WORK/err"; rc=$?
[[ $rc == 9 && $(cat "$WORK/err") == e ]] || fail "exit $rc, stderr '$(cat "$WORK/err")'"
[[ $(cat "$app/sub/data") == "the user's file" ]] || fail "the workdir itself was written"

# A branch of a shell session is a shell session: snap and restore in it.
"$FP" snap sh-b2 t0 >/dev/null || fail "snap in a shell branch"
"$FP" exec sh-b2 -c 'v=later' || fail "exec"
"$FP" restore sh-b2 t0 >/dev/null || fail "restore in a shell branch"
[[ $("$FP" exec sh-b2 -c 'echo $v') == seven ]] || fail "restore in a shell branch: $("$FP" exec sh-b2 -c 'echo $v')"

for n in sh-b1 sh-b2 sh; do
	h=$(session_field "$n" helper_pid)
	"$FP" stop "$n" || fail "stop $n"
	wait_for 20 bash -c "! kill -0 $h 2>/dev/null" || fail "$n's helper did not end"
done
for p in "$orig" "${bp[sh-b1]}" "${bp[sh-b2]}"; do
	wait_for 20 bash -c "! kill -0 $p 2>/dev/null" || fail "a shell ($p) outlived its session"
done
echo ok
