"""Plots of time against memory size (the C heap workloads: 10 MiB, 100 MiB,
1 GiB) for both tools, with gnuplot: dump wall time, pause (--leave-running)
and restore time to running. Medians, with min-max bars, log-log axes."""
import os
import shutil
import subprocess
import tempfile

# plot file suffix -> (title, op, metric, series as (tool, mode, legend))
PLOTS = {
    "dump": ("Dump wall time (target killed after the dump)", "dump", "wall_ms", [
        ("criu", "criu", "CRIU"),
        ("forkpoint", "zstd", "forkpoint zstd"),
        ("forkpoint", "none", "forkpoint none"),
        ("forkpoint", "zstd/no-fsync", "forkpoint zstd, no fsync"),
        ("forkpoint", "none/no-fsync", "forkpoint none, no fsync")]),
    "pause": ("Target pause, dump --leave-running (as each tool reports it)", "dump -R", "pause_ms", [
        ("criu", "criu", "CRIU (frozen_time)"),
        ("forkpoint", "zstd", "forkpoint zstd"),
        ("forkpoint", "none", "forkpoint none"),
        ("forkpoint", "zstd/no-fsync", "forkpoint zstd, no fsync"),
        ("forkpoint", "none/no-fsync", "forkpoint none, no fsync")]),
    "restore": ("Restore -d, until the process runs", "restore", "restore_ms", [
        ("criu", "criu", "CRIU"),
        ("forkpoint", "native (zstd img)", "forkpoint native, zstd image"),
        ("forkpoint", "native (none img)", "forkpoint native, plain image"),
        ("forkpoint", "criu (zstd img)", "forkpoint --engine criu, zstd image"),
        ("forkpoint", "criu (none img)", "forkpoint --engine criu, plain image")]),
}


COLOURS = ("#000000", "#1b9e77", "#3060d0", "#d95f02", "#c0186a")


def terminal():
    """pngcairo if this gnuplot has it, else the libgd png terminal."""
    for term in ("pngcairo size 900,600 font 'sans,10'", "png size 900,600"):
        r = subprocess.run(["gnuplot", "-e", "set terminal %s" % term], capture_output=True)
        if r.returncode == 0 and not r.stderr.strip():
            return term
    return None


def series_points(rows, op, metric, tool, mode):
    pts = []
    for r in rows:
        if r["workload"].startswith("heap") and r["op"] == op and r["tool"] == tool and r["mode"] == mode:
            s = r.get(metric)
            if s:
                pts.append((r["mem_mib"], s["median"], s["min"], s["max"]))
    return sorted(pts)


def plots(rows, base):
    """Writes base-<name>.png for each plot; returns the paths made."""
    if not shutil.which("gnuplot"):
        print("plot: gnuplot not found; no plots (make setup installs gnuplot-nox)")
        return []
    term = terminal()
    if not term:
        print("plot: this gnuplot has neither the pngcairo nor the png terminal; no plots")
        return []
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (title, op, metric, series) in PLOTS.items():
            cmds, data_files = [], []
            for i, (tool, mode, legend) in enumerate(series):
                pts = series_points(rows, op, metric, tool, mode)
                if not pts:
                    continue
                path = os.path.join(tmp, "%s-%d.dat" % (name, i))
                with open(path, "w") as f:
                    f.writelines("%g %g %g %g\n" % p for p in pts)
                width = 3 if tool == "criu" else 1.5
                cmds.append("'%s' using 1:2:3:4 with yerrorlines lw %g lc rgb '%s' pt %d title \"%s\"" % (
                    path, width, COLOURS[i % len(COLOURS)], 7 if tool == "criu" else i + 4, legend))
                data_files.append(path)
            if not cmds:
                continue
            out = "%s-%s.png" % (base, name)
            script = "\n".join([
                "set terminal %s" % term, "set termoption noenhanced", "set output '%s'" % out, "set title \"%s\"" % title,
                "set logscale xy", "set xtics ('10 MiB' 10, '100 MiB' 100, '1 GiB' 1024)",
                "set xrange [7:1500]", "set xlabel 'memory held by the target'", "set ylabel 'ms'",
                "set grid", "set key top left", "plot " + ", ".join(cmds)])
            r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
            if r.returncode != 0:
                print("plot: gnuplot failed for %s: %s" % (name, r.stderr.strip()[:300]))
                continue
            made.append(out)
    return made
