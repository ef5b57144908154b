#!/usr/bin/env bash
# Runs every test and ends with one line CI reads: "N passed, N failed, N skipped".
#   - build/tests/unit/*       unit and real-process tests in C (plain build)
#   - build-san/tests/unit/*   the same under ASan+UBSan
#   - tests/e2e/*.sh           end-to-end tests through the forkpoint command
#                              (those of the session engine also with build-san)
#   - tests/fuzz/*.sh          libFuzzer targets (`make fuzz`), FUZZ_SECONDS
#                              each (60); a crash prints the input's path
#   - python/tests/            pytest tests of the Python binding, each counted
#                              as a test named py/FILE::TEST
# A test passes with exit 0, is skipped with exit 77, fails otherwise. A part
# of a test that cannot run here (tests/lib.sh skip_part: no working CRIU)
# is counted as skipped too, beside the test's own verdict.
# Each test runs under a deadline (FP_TEST_TIMEOUT seconds, default 600) so a
# hang is a failure, not a stuck CI.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FP_ROOT=$ROOT
TIMEOUT=${FP_TEST_TIMEOUT:-600}
FILTER=${1:-}
LOGDIR=$(mktemp -d /tmp/forkpoint-tests.XXXXXX)
pass=0 fail=0 skip=0
failed=()

run_one() { # name build-dir command...
	local name=$1 build=$2; shift 2
	[[ -n $FILTER && $name != *$FILTER* ]] && return
	local log="$LOGDIR/${name//\//_}.log" start rc
	start=$(date +%s.%N)
	local parts="$LOGDIR/${name//\//_}.skipped-parts"
	FP_SKIP_PARTS=$parts FP_BUILD=$ROOT/$build timeout --kill-after=10 "$TIMEOUT" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	local secs
	secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
	if [[ -s $parts ]]; then
		local part
		while IFS= read -r part; do
			skip=$((skip + 1)); echo "SKIP $name, part: $part"
		done <"$parts"
	fi
	if [[ $rc == 0 ]]; then
		pass=$((pass + 1)); echo "PASS $name (${secs}s)"
	elif [[ $rc == 77 ]]; then
		skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")"
	else
		fail=$((fail + 1)); failed+=("$name")
		[[ $rc == 124 ]] && echo "FAIL $name: timed out after ${TIMEOUT}s" || echo "FAIL $name (exit $rc, ${secs}s)"
		sed 's/^/    | /' "$log" | tail -n 40
	fi
}

for t in "$ROOT"/build/tests/unit/*; do
	[[ -x $t ]] && run_one "unit/$(basename "$t")" build "$t"
done
for t in "$ROOT"/build-san/tests/unit/*; do
	[[ -x $t ]] && run_one "san/$(basename "$t")" build-san "$t"
done
for t in "$ROOT"/tests/e2e/*.sh; do
	[[ -f $t ]] && run_one "e2e/$(basename "$t" .sh)" build bash "$t"
done
# The session engine (incremental snapshots, rollbacks in place, branches)
# under ASan+UBSan too: the e2e tests that drive it, run with build-san's
# forkpoint, whose session helper is that same binary. There each rollback
# in place also compares its pages with the full walk's answer
# (FP_ROLLBACK_CHECK, helper/session/rollback_pages.c) and fails where they
# would write back different pages, and each incremental snapshot's stop
# checks its tracked pages against the full walk, content included
# (FP_DUMP_FAST_CHECK, helper/dump/dump_incr_fastcheck.c).
for t in "$ROOT"/tests/e2e/{rollback,snap_incr}_*.sh "$ROOT"/tests/e2e/{walk,branch,snap_full_store,snap_chain_max,snap_early_reply}.sh; do
	[[ -f $t ]] && FP_ROLLBACK_CHECK=1 FP_DUMP_FAST_CHECK=1 run_one "san-e2e/$(basename "$t" .sh)" build-san bash "$t"
done

for t in "$ROOT"/tests/fuzz/*.sh; do
	[[ -f $t ]] && run_one "fuzz/$(basename "$t" .sh)" build bash "$t"
done
# The Python binding's tests: one pytest run, each of its tests counted here.
# They need a python3 with pytest and cffi (Debian's python3-pytest and
# python3-cffi live in /usr/bin/python3, which may not be the first python3).
run_pytest() {
	[[ -n $FILTER && py/ != *$FILTER* && $FILTER != py/* ]] && return
	[[ -d $ROOT/python/tests ]] || return
	local py xml=$LOGDIR/pytest.xml log=$LOGDIR/pytest.log
	for py in python3 /usr/bin/python3; do
		"$py" -c 'import pytest, cffi' 2>/dev/null && break
		py=
	done
	if [[ -z $py ]]; then
		skip=$((skip + 1)); echo "SKIP py: no python3 with pytest and cffi (Debian: python3-pytest python3-cffi)"
		return
	fi
	FP_BUILD=$ROOT/build timeout --kill-after=10 "$TIMEOUT" "$py" -m pytest -p no:cacheprovider -q \
		--junitxml="$xml" "$ROOT/python/tests" >"$log" 2>&1 </dev/null
	local rc=$? line
	if [[ ! -s $xml ]]; then
		fail=$((fail + 1)); failed+=("py"); echo "FAIL py: pytest ran no tests (exit $rc)"
		sed 's/^/    | /' "$log" | tail -n 40
		return
	fi
	# one line per test: verdict name seconds [reason]
	while IFS=$'\t' read -r verdict name secs why; do
		[[ -n $FILTER && $name != *$FILTER* ]] && continue
		case $verdict in
		pass) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
		skip) skip=$((skip + 1)); echo "SKIP $name: $why" ;;
		*) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (${secs}s)"
		   printf "%b\n" "$why" | sed "s/^/    | /" | tail -n 40 ;;
		esac
	done < <("$py" - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = "py/" + case.get("classname", "").split(".")[-1] + ".py::" + case.get("name", "")
    secs = "%.1f" % float(case.get("time", 0))
    bad = case.find("failure") if case.find("failure") is not None else case.find("error")
    skipped = case.find("skipped")
    if bad is not None:
        why = (bad.get("message", "") + "\n" + (bad.text or "")).replace("\t", " ")
        print("fail", name, secs, why.replace("\n", "\\n"), sep="\t")
    elif skipped is not None:
        print("skip", name, secs, skipped.get("message", "").replace("\n", " "), sep="\t")
    else:
        print("pass", name, secs, "", sep="\t")
PY
)
}
run_pytest

echo "logs: $LOGDIR"
[[ ${#failed[@]} -gt 0 ]] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[[ $fail == 0 && $((pass + fail)) -gt 0 ]]
