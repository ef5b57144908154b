"""Writing the results: the tables (markdown, printed and saved), a CSV of the
summary, a JSON of everything (machine, summary, every run), and the plots.
Timestamped files bench-TS.* and a copy of each as latest.*. Run directly on
a saved JSON, it renders that run's tables, CSV and plots again."""
import csv
import json
import os
import re
import shutil

import plot
import stats


def fmt_ms(v):
    return "%.1f" % v if v < 10 else "%.0f" % v


def cell_ms(s):
    """median [min-max] of a spread, or an empty string."""
    if not s:
        return ""
    return "%s [%s–%s]" % (fmt_ms(s["median"]), fmt_ms(s["min"]), fmt_ms(s["max"]))


def cell_ratio(s):
    if not s:
        return ""
    return "%.2f× [%.2f–%.2f]" % (s["median"], s["min"], s["max"])


def cell_mib(s, kib=False):
    if not s:
        return ""
    v = s["median"] / (1024 if kib else 2**20)
    return "%.1f" % v if v < 10 else "%.0f" % v


# The baseline's column names the CRIU that ran ("CRIU 4.2.1"); set by tables().
CRIU_LABEL = "CRIU"


def who(row):
    return CRIU_LABEL if row["tool"] == "criu" else "forkpoint " + row["mode"]


def ok_cell(row):
    if not row:
        return ""
    text = "%d/%d" % (row["ok"], row["runs"])
    return text if row["status"] in ("ok", "partial") else "**%s** %s" % (row["status"], text)


def dump_rows(rows):
    """One line per (workload, tool, mode): the dump and dump -R cells."""
    pairs = {}
    for r in rows:
        if r["op"].startswith("dump"):
            pairs.setdefault((r["workload"], r["tool"], r["mode"]), {})[r["op"]] = r
    return pairs.values()


def problem_lines(rows):
    """Failures grouped by workload and message (pids aside), "no image"
    rows left out (their dump's failure is listed)."""
    groups = {}
    for r in rows:
        if r["error"] and r["status"] != "no image":
            key = (r["workload"], re.sub(r"(?<![.:\d])\d{3,7}\b", "N", r["error"]))
            groups.setdefault(key, []).append(r)
    out = []
    for (workload, error), rs in groups.items():
        by_op = {}
        for r in rs:
            by_op.setdefault((r["tool"], r["op"]), []).append(r["mode"])
        what = "; ".join("%s %s" % ("CRIU" if tool == "criu" else "forkpoint " + ", ".join(modes), op)
                         for (tool, op), modes in by_op.items())
        failed = sum(r["runs"] - r["ok"] for r in rs)
        out.append("- %s, %s: %s in %d of %d runs: %s" % (workload, what, rs[0]["status"], failed,
                                                        sum(r["runs"] for r in rs), error.replace("|", "/")))
    return out


def tables(rows, info):
    global CRIU_LABEL
    CRIU_LABEL = "CRIU " + str(info.get("criu", "")).split(" ")[0]
    out = ["### Dump (ms: median [min–max]; ×CRIU: median of the per-round forkpoint/CRIU ratios)", "",
           "`dump` kills the target after the dump; `dump -R` is --leave-running, whose pause is "
           "the tool's own figure (forkpoint: manifest pause_ms; CRIU: stats-dump frozen_time). "
           "forkpoint pre-copies processes from 64 MiB on: it stops them once briefly before the "
           "copy (pre-stop) and once for the capture (pause).", "",
           "| workload | tool | ok (dump, -R) | dump | ×CRIU | dump -R | ×CRIU | pause (-R) | ×CRIU "
           "| pre-stop (-R) | image MiB | peak RSS MiB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for pair in dump_rows(rows):
        d, lr = pair.get("dump"), pair.get("dump -R")
        any_row = d or lr
        g = lambda row, key: row.get(key) if row else None
        out.append("| %s | %s | %s, %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            any_row["workload"], who(any_row), ok_cell(d), ok_cell(lr),
            cell_ms(g(d, "wall_ms")), cell_ratio(g(d, "ratio_wall_ms")),
            cell_ms(g(lr, "wall_ms")), cell_ratio(g(lr, "ratio_wall_ms")),
            cell_ms(g(lr, "pause_ms")), cell_ratio(g(lr, "ratio_pause_ms")), cell_ms(g(lr, "prestop_ms")),
            cell_mib(g(d, "size_bytes") or g(lr, "size_bytes")),
            cell_mib(g(d, "maxrss_kb") or g(lr, "maxrss_kb"), kib=True)))
    out += ["", "### Restore -d (ms from the command's start: running = it returned and the process is "
            "alive; verified = the process also passed its own state check)", "",
            "| workload | tool | ok | to running | ×CRIU | to verified | ×CRIU | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["op"] == "restore":
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["workload"], who(r), ok_cell(r), cell_ms(r["restore_ms"]), cell_ratio(r.get("ratio_restore_ms")),
                cell_ms(r["verified_ms"]), cell_ratio(r.get("ratio_verified_ms")), cell_mib(r["maxrss_kb"], kib=True)))
    problems = problem_lines(rows)
    if problems:
        out += ["", "### Failed or unsupported (first message; pids shown as N)", ""] + problems
    return "\n".join(out) + "\n"


def header(info):
    other = info.get("other_cpu") or {}
    return ("%s: kernel %s, %s, %s cores, %s RAM; %s; CRIU %s. %d runs per cell%s, %d s in all; "
            "1-minute load average %.2f at the start, %.2f at the end. CPU used by other work on the "
            "machine during each workload (cores, average; includes kernel writeback): %s.\n" % (
                info["date"], info["kernel"], info["cpu"], info["cores"], info["memory"], info["forkpoint"],
                info["criu"], info["runs"], " (BENCH_QUICK)" if info["quick"] else "", info.get("duration_s", 0),
                info.get("load_start", 0), info.get("load_end", 0),
                ", ".join("%s %.2f" % kv for kv in other.items()) or "not measured"))


def write_csv(rows, path):
    cols = ["workload", "mem_mib", "op", "tool", "mode", "runs", "ok", "status"]
    metrics = list(stats.METRICS) + ["ratio_" + m for ms in stats.RATIO_METRICS.values() for m in ms]
    metrics = list(dict.fromkeys(metrics))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + ["%s_%s" % (m, s) for m in metrics for s in ("median", "min", "max")] + ["error"])
        for r in rows:
            vals = [r[c] if r[c] is not None else "" for c in cols]
            for m in metrics:
                s = r.get(m)
                vals += [round(s[k], 4) if s else "" for k in ("median", "min", "max")]
            w.writerow(vals + [r["error"]])


def write_json(info, rows, records, path):
    """Machine, summary and every run; one cell or run per line, so that it
    stays small and diffs well."""
    def line(obj):
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    with open(path, "w") as f:
        f.write('{"machine":%s,\n"summary":[\n' % line(info))
        f.write(",\n".join(line(r) for r in rows))
        f.write('],\n"runs":[\n')
        f.write(",\n".join(line(r) for r in records))
        f.write("]}\n")


def render(rows, info, base):
    """Writes base.md, base.csv and the plots from the summary; returns the
    paths and the text."""
    text = header(info) + "\n" + tables(rows, info)
    with open(base + ".md", "w") as f:
        f.write(text)
    write_csv(rows, base + ".csv")
    return [base + ".md", base + ".csv"] + plot.plots(rows, base), text


def write_all(records, info, out_dir, stamp):
    os.makedirs(out_dir, exist_ok=True)
    rows = stats.summarize(records)
    base = os.path.join(out_dir, "bench-" + stamp)
    write_json(info, rows, records, base + ".json")
    made, text = render(rows, info, base)
    made.insert(0, base + ".json")
    print("\n" + text)
    for path in made:
        latest = os.path.join(out_dir, "latest" + os.path.basename(path)[len("bench-" + stamp):])
        shutil.copyfile(path, latest)
    print("results: %s (and latest.*)" % ", ".join(made))


if __name__ == "__main__":
    # Re-renders the JSON, tables, CSV and plots of a saved run:
    #   python3 bench/report.py bench/results/bench-TIME.json
    import sys
    path = sys.argv[1]
    with open(path) as f:
        saved = json.load(f)
    rows = stats.summarize(saved["runs"])
    write_json(saved["machine"], rows, saved["runs"], path)
    made, _ = render(rows, saved["machine"], path[:-len(".json")])
    print("\n".join([path] + made))
