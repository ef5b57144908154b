#!/usr/bin/env bash
# A rollback in place of a process with many fds (build/bench/bench_many:
# N fds, a third /dev/null, a third a file at distinct offsets, a third
# dups), with the fds listed from the shim's table (rollback_fdtab.c) and
# from /proc (FORKPOINT_ROLLBACK_FDS_PROC=1 in the session helper's
# environment): two sessions, one snapshot each, then RUNS rollbacks to it
# by turns. Prints the medians of the rollback's `diff` phase (where the
# fds are compared, process stopped), its stop-to-resume time and the
# command's wall time. Measures only; never fails on a number.
#   bench/rollback_fds.sh [N] [RUNS]      (default 10000 9; needs root)
N_DEFAULT=10000 RUNS_DEFAULT=9 TMP_NAME=fp-rollback-fds
source "$(dirname "$0")/many_common.inc"
trap 'for s in rt rp; do "$FP" stop --kill $s >/dev/null 2>&1 || true; done; rm -rf "$TMP"' EXIT
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $N fds, $RUNS rollbacks each, by turns"
for s in rt rp; do
	env=()
	[[ $s == rp ]] && env=(FORKPOINT_ROLLBACK_FDS_PROC=1)
	env "${env[@]}" "$FP" run --detach --name $s -- "$TGT" fds "$N" "$TMP/st-$s" >/dev/null
	for _ in $(seq 600); do grep -q '^ready ' "$TMP/st-$s" 2>/dev/null && break; sleep 0.1; done
	grep -q '^ready ' "$TMP/st-$s" || { echo "$s: target not ready" >&2; exit 1; }
	"$FP" snap $s s1 >/dev/null
done
for r in $(seq "$RUNS"); do
	for s in rt rp; do
		"$FP" restore $s s1 --json >"$TMP/$s-$r.json"
	done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$TMP" "$RUNS" <<'PY'
import json, statistics, sys
tmp, runs = sys.argv[1], int(sys.argv[2])
print("%-18s %10s %12s %12s  %s" % ("fds from", "diff ms", "stopped ms", "wall ms", "in place / fds_from"))
for s, name in (("rt", "the shim's table"), ("rp", "/proc")):
    d = [json.load(open(f"{tmp}/{s}-{r}.json")) for r in range(1, runs + 1)]
    diff = [float(x["phases_ms"].split("diff ")[1].split()[0]) for x in d]
    print("%-18s %10.1f %12.1f %12.1f  %s" % (name, statistics.median(diff),
          statistics.median(x["restore_ms"] for x in d), statistics.median(x["total_ms"] for x in d),
          ",".join(sorted({"%s/%s" % (x["in_place"], x.get("fds_from", "?")) for x in d}))))
    print("%-18s %s" % ("", "diff ms of each: " + " ".join("%.1f" % v for v in diff)))
    def step(x, name):
        w = (x.get("steps_ms") or "").split()
        return sum(float(v) for k, v in zip(w[::2], w[1::2]) if k == name)
    print("%-18s %s" % ("", "stopped, median ms of: " + " ".join(
        "%s %.2f" % (k, statistics.median(step(x, k) for x in d)) for k in ("d_fds", "d_shares", "d_shares_kcmp", "d_queues", "d_locks"))))
PY
