# forkpoint doctor (forkpoint_doctor): the CRIU in use and why each other
# candidate was refused, in text and JSON, agreeing with --criu-path;
# --probe tests one binary alone; a refused FORKPOINT_CRIU is named with
# its fix, and stays the only candidate.
source "$(dirname "$0")/../lib.sh"

field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

json=$("$FP" doctor --cached --json) || fail "doctor --json: $json"
criu=$(field "$json" 'd["criu"] or ""')
in_use=$(field "$json" '[c["path"] for c in d["candidates"] if c["in_use"]]')
text=$("$FP" doctor --cached) || fail "doctor: $text"
path=$("$FP" doctor --criu-path 2>"$WORK/path.err")
rc=$?
if [[ -n $criu ]]; then
	((rc == 0)) && [[ $path == "$criu" ]] || fail "--criu-path gave '$path' (exit $rc), --json '$criu'"
	[[ $in_use == "['$criu']" ]] || fail "the candidate in use: $in_use"
	[[ $(field "$json" '[c["version"][:2] for c in d["candidates"] if c["in_use"]][0]') == 4. ]] ||
		fail "in use but not 4.x: $json"
	[[ $(head -1 <<<"$text") == "CRIU (restore fallback, bench baseline): $criu" ]] || fail "text: $text"
	grep -qF "* $criu: CRIU" <<<"$text" || fail "the text does not mark $criu in use: $text"
	out=$("$FP" doctor --probe "$criu") || fail "--probe of the CRIU in use: $out"
	[[ $out == "$criu: CRIU "*" works (check, dump, restore)" ]] || fail "--probe said: $out"
else
	((rc == 4)) || fail "no usable CRIU, but --criu-path exits $rc"
	grep -q "none usable" <<<"$text" || fail "text: $text"
fi
# Every refused candidate says why.
[[ $(field "$json" 'all(c["usable"] or c["refused_because"] for c in d["candidates"])') == True ]] ||
	fail "a refused candidate without a reason: $json"

# One binary alone: one that is not there, one that is no CRIU.
out=$("$FP" doctor --probe "$WORK/none")
rc=$?
((rc == 4)) && [[ $out == "$WORK/none: does not exist" ]] || fail "--probe of a missing file: '$out' (exit $rc)"
printf '#!/bin/sh\necho "Version: 3.17"\n' >"$WORK/old-criu"
chmod +x "$WORK/old-criu"
pj=$("$FP" doctor --probe "$WORK/old-criu" --json)
rc=$?
((rc == 4)) || fail "--probe of a CRIU 3.17 exits $rc"
[[ $(field "$pj" 'd["usable"], d["version"], d["source"]') == "(False, '3.17.0', 'FORKPOINT_CRIU')" ]] ||
	fail "--probe --json: $pj"
[[ $(field "$pj" 'd["refused_because"]') == *"need 4.x or later"* ]] || fail "--probe --json: $pj"

# An explicit choice that does not work: the only candidate, named with the fix.
out=$(FORKPOINT_CRIU=$WORK/none "$FP" doctor --criu-path 2>&1)
rc=$?
((rc == 4)) || fail "a refused FORKPOINT_CRIU: --criu-path exits $rc"
[[ $out == *"FORKPOINT_CRIU is set but refused: $WORK/none: does not exist"*"unset it"* ]] || fail "--criu-path said: $out"
n=$(FORKPOINT_CRIU=$WORK/none "$FP" doctor --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["candidates"]))')
((n == 1)) || fail "FORKPOINT_CRIU is not the only candidate ($n)"
echo ok
