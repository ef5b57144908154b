# examples/search.py: a session, one snapshot, four candidates from it
# (branches as root, restores in turn otherwise),
# answers compared, everything cleaned up afterwards.
source "$(dirname "$0")/../lib.sh"
py=
for p in python3 /usr/bin/python3; do "$p" -c 'import cffi' 2>/dev/null && { py=$p; break; }; done
[[ -n $py ]] || { echo "no python3 with cffi (Debian: python3-cffi)"; exit 77; }
[[ -e $BUILD/lib/libforkpoint.so.0 ]] || { echo "no $BUILD/lib/libforkpoint.so.0: run make all"; exit 77; }

out=$(FORKPOINT_LIB=$BUILD/lib/libforkpoint.so.0 timeout 300 "$py" "$ROOT/examples/search.py" 2>&1) || fail "search.py: $out"
echo "$out"
[[ $out == *"all 4 agree"* && $out == *"each started from the same state"* ]] || fail "no agreement"
[[ $out == *"branches of 'base'"* || $out == *"restoring 'base' before each"* ]] || fail "says neither how it ran"
# As root a shell session can be branched: the fallback must not be taken.
[[ $(id -u) != 0 || $out == *"4 branches of 'base'"* ]] || fail "root, but the candidates did not run in branches"
left=$(ls "$FORKPOINT_HOME/sessions" 2>/dev/null)
[[ -z $left ]] || fail "sessions left behind: $left"
echo ok
