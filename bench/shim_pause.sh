#!/usr/bin/env bash
# The snapshot pause of a session with and without the shim (`forkpoint run`
# and `run --no-shim`), for a process with many fds and one with many
# mappings (build/bench/bench_many): the median pause_ms of RUNS `snap
# --json` (the first is full, the others incremental) of each, and what the
# dump said about the shim's table. "shim-noshort" is the shim with the
# table's shortcut at the stop turned off (FORKPOINT_NO_FD_SHORTCUT=1: every
# fd read from fdinfo while stopped, as before the shortcut). Kind
# "childfds": the fds held by a child of the session's root (a shell that
# started it), whose fds the dump's look serves since it lived through a
# snapshot (helper/dump/dump_fdlook.c).
# Measures only; never fails on a number.
#   bench/shim_pause.sh [N] [RUNS]        (default 10000 5; needs root)
# SHIM_PAUSE_KINDS (default "fds maps") and SHIM_PAUSE_MODES (default "shim
# shim-noshort noshim") choose the rows; FP_BUILD another build (a
# before/after comparison).
N_DEFAULT=10000 RUNS_DEFAULT=5 TMP_NAME=fp-shim-pause
source "$(dirname "$0")/many_common.inc"
trap '"$FP" stop --kill sp >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT

echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $N each, $RUNS snaps per row"
printf '%-6s %-12s %12s %12s %12s  %s\n' kind shim "pause first" "pause incr" "total incr" "shim table"
for kind in ${SHIM_PAUSE_KINDS:-fds maps}; do
	for mode in ${SHIM_PAUSE_MODES:-shim shim-noshort noshim}; do
		opt=() env=()
		[[ $mode == noshim ]] && opt=(--no-shim)
		[[ $mode == shim-noshort ]] && env=(FORKPOINT_NO_FD_SHORTCUT=1)
		rm -f "$TMP/st"
		cmd=("$TGT" "$kind" "$N" "$TMP/st")
		[[ $kind == childfds ]] && cmd=(sh -c '"$0" fds "$1" "$2" & wait' "$TGT" "$N" "$TMP/st")
		env "${env[@]}" "$FP" run --detach --name sp "${opt[@]}" -- "${cmd[@]}" >/dev/null
		for _ in $(seq 600); do grep -q '^ready ' "$TMP/st" 2>/dev/null && break; sleep 0.1; done
		grep -q '^ready ' "$TMP/st" || { echo "$kind $mode: target not ready" >&2; exit 1; }
		for r in $(seq "$RUNS"); do
			"$FP" snap sp --json >"$TMP/s$r.json"
		done
		"$FP" stop --kill sp >/dev/null 2>&1
		python3 - "$kind" "$mode" "$TMP" "$RUNS" <<'PY'
import json, statistics, sys
kind, mode, tmp, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
d = [json.load(open(f"{tmp}/s{r}.json")) for r in range(1, runs + 1)]
rest = d[1:] or d
shim = ("checked, %d disagree" % max(x["shim_disagree"] for x in d)) if d[0]["shim_checked"] else "-"
print("%-6s %-12s %9.1f ms %9.1f ms %9.1f ms  %s" % (kind, mode, d[0]["pause_ms"],
      statistics.median(x["pause_ms"] for x in rest), statistics.median(x["total_ms"] for x in rest), shim))
PY
		rm -rf "$FORKPOINT_HOME/sessions/sp"
	done
done
