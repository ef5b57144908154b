"""Summaries of the benchmark runs: one cell per (workload, tool, op, mode),
with median and min-max of each metric over the runs that passed, and the
forkpoint/CRIU ratio taken pair by pair (the ratio of the two runs of the
same round, then the median of those ratios)."""
import statistics

METRICS = ("wall_ms", "pause_ms", "prestop_ms", "restore_ms", "verified_ms", "size_bytes", "maxrss_kb")
# Which metrics are compared with CRIU, per op.
RATIO_METRICS = {"dump": ("wall_ms", "pause_ms"), "dump -R": ("wall_ms", "pause_ms"),
                 "restore": ("restore_ms", "verified_ms")}


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def cells(records):
    """Cells in first-seen order: key -> list of records."""
    out = {}
    for r in records:
        out.setdefault((r["workload"], r["op"], r["tool"], r["mode"]), []).append(r)
    return out


def summarize(records):
    by_cell = cells(records)
    rows = []
    for (workload, op, tool, mode), rs in by_cell.items():
        ok = [r for r in rs if r["status"] == "ok"]
        bad = [r for r in rs if r["status"] != "ok"]
        row = {"workload": workload, "label": rs[0]["label"], "mem_mib": rs[0]["mem_mib"], "op": op,
               "tool": tool, "mode": mode, "runs": len(rs), "ok": len(ok),
               "status": "ok" if not bad else ("partial" if ok else bad[0]["status"]),
               "error": bad[0]["error"] if bad else ""}
        for m in METRICS:
            row[m] = spread([r.get(m) for r in ok])
        base = by_cell.get((workload, op, "criu", "criu"))
        for m in RATIO_METRICS.get(op, ()):
            row["ratio_" + m] = None
            if tool == "criu" or not base:
                continue
            base_by_round = {r["round"]: r for r in base if r["status"] == "ok"}
            ratios = [r[m] / base_by_round[r["round"]][m] for r in ok
                      if r["round"] in base_by_round and r.get(m) and base_by_round[r["round"]].get(m)]
            row["ratio_" + m] = spread(ratios)
        rows.append(row)
    return rows
