# --quiet prints only the machine fields (checkpoint-lite's
# SESSION,WORKDIR[,PID]); names that could escape the session directory or
# inject options are refused by every command that takes one, and a
# --workdir whose path holds overlay option syntax (',', ':', '=') is a
# path, never options.
source "$(dirname "$0")/../lib.sh"
[[ $(id -u) == 0 ]] || { echo "needs root (--workdir mounts an overlay)"; exit 77; }

wd="$WORK/a,lowerdir=$WORK:x=y"
mkdir -p "$wd" "$WORK/x=y"
echo inside >"$wd/mine.txt"
out=$("$FP" run --shell --quiet --workdir "$wd" --name q) || fail "run --shell --quiet: $out"
track_pid "$(session_field q helper_pid)"
[[ $out == "q,$wd,$(session_field q target_pid)" ]] || fail "run --quiet printed '$out'"
[[ $("$FP" exec q -- cat mine.txt) == inside ]] || fail "the workdir with option syntax in its path shows other files: $("$FP" exec q -- ls)"
[[ $("$FP" exec q -c pwd) == "$wd" ]] || fail "cwd: $("$FP" exec q -c pwd)"
"$FP" exec q -- touch new.txt || fail "write in the view"
[[ ! -e $wd/new.txt ]] || fail "the workdir itself was written"

out=$("$FP" snap q s1 --quiet) || fail "snap --quiet: $out"
[[ $out == "q,s1" ]] || fail "snap --quiet printed '$out'"
out=$("$FP" restore q s1 --quiet) || fail "restore --quiet: $out"
[[ $out == "q,$wd,$(session_field q target_pid)" ]] || fail "restore --quiet printed '$out'"
out=$("$FP" run --detach -q --name d -- sleep 1000) || fail "run --detach --quiet"
track_pid "$(session_field d helper_pid)"
[[ $out == "d,,$(session_field d target_pid)" ]] || fail "run --detach --quiet printed '$out'"
# Errors still go to stderr, with a status.
err=$("$FP" snap q s1 --quiet 2>&1 >/dev/null) && fail "a second s1 was accepted"
[[ -n $err ]] || fail "an error with --quiet said nothing"

for bad in 'a/b' '..' '../q' '-x' '--force' '.q' 'a,b' 'x=y' 'a:b' 'a b' ''; do
	err=$("$FP" exec "$bad" -- true 2>&1) && fail "exec '$bad' accepted"
	err=$("$FP" snap "$bad" 2>&1) && fail "snap '$bad' accepted"
	err=$("$FP" stop "$bad" 2>&1) && fail "stop '$bad' accepted"
	[[ -z $bad ]] || { err=$("$FP" list "$bad" 2>&1) && fail "list '$bad' accepted"; }
	err=$("$FP" cleanup "$bad" 2>&1) && fail "cleanup '$bad' accepted"
	err=$("$FP" cleanup --force "$bad" 2>&1) && fail "cleanup --force '$bad' accepted"
	err=$("$FP" restore "$bad" s1 2>&1) && fail "restore '$bad' s1 accepted"
	err=$("$FP" rm "$bad" s1 2>&1) && fail "rm '$bad' s1 accepted"
	err=$("$FP" restore q "$bad" 2>&1) && fail "restore q '$bad' accepted"
	err=$("$FP" snap q "$bad" 2>&1) && fail "snap q '$bad' accepted"
done
[[ $(ls "$FORKPOINT_HOME/sessions" | sort | tr '\n' ' ') == "d q " ]] ||
	fail "bad names left something: $(ls -a "$FORKPOINT_HOME/sessions")"
[[ $("$FP" exec q -c 'cat mine.txt; ls new.txt') == $'inside\nnew.txt' ]] || fail "the session was disturbed"
"$FP" cleanup -q q || fail "cleanup q"
"$FP" cleanup -q d || fail "cleanup d"
echo ok
