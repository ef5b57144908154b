"""forkpoint against plain CRIU, side by side (run by bench/run.sh).

For each workload, R rounds; each round runs one forkpoint block and one CRIU
block, in alternating order (forkpoint first in even rounds, CRIU first in odd
ones), so slow drift and "first of a series" effects hit both tools alike.

  forkpoint block, for each dump mode (zstd, none, each also --no-fsync):
    start a target; dump --leave-running; verify the target; dump (kills it);
    images of the plain zstd and none dumps are then restored with
    --engine native and --engine criu, each verified, killed, pid freed.
  CRIU block: start a target; criu dump --leave-running; verify;
    criu dump; criu restore -d; verify; kill; pid freed.

A run counts only when the tool exited 0 and the process proves its state;
anything else is recorded as failed/unsupported with its message.
Environment: BENCH_QUICK=1 (3 rounds, no 1 GiB), BENCH_RUNS=N,
BENCH_WORKLOADS=name,name, BENCH_WORKDIR (default /var/tmp), BENCH_OUT,
BENCH_BIN (the directory with forkpoint, bench_runwait, bench_threads and
ct_heap; run.sh sets it).
"""
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import procs
import report
import tools
import workloads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, fp, criu, work, runs):
        self.fp, self.criu, self.work, self.runs = fp, criu, work, runs
        self.records = []
        self.serial = 0
        self.other_cpu = {}

    def next_dir(self, what):
        self.serial += 1
        return os.path.join(self.work, "%s-%d" % (what, self.serial))

    def timeout_s(self, w):
        return 120 + 0.3 * (w.mem_mib or 200)

    def record(self, w, rnd, tool, op, mode, **fields):
        r = {"workload": w.name, "label": w.label, "mem_mib": w.mem_mib, "round": rnd, "tool": tool,
             "op": op, "mode": mode, "status": "ok", "error": ""}
        r.update(fields)
        self.records.append(r)
        if r["status"] == "ok":
            detail = ", ".join("%s %.1f" % (k, r[k]) for k in ("wall_ms", "pause_ms", "restore_ms", "verified_ms")
                               if r.get(k) is not None)
            if r.get("size_bytes") is not None:
                detail += ", %.1f MiB" % (r["size_bytes"] / 2**20)
        else:
            detail = "%s: %s" % (r["status"].upper(), r["error"])
        log("  [%s r%d] %-9s %-8s %-22s %s" % (w.name, rnd, tool, op, mode, detail))
        return r

    def start(self, w):
        self.serial += 1
        return w.start(self.work, self.serial)

    # ---------------------------------------------------------------- dump

    def dump(self, w, rnd, t, tool, mode, leave_running):
        w.before_dump(t)
        img = self.next_dir("img")
        logf = img + ".log"
        if tool == "forkpoint":
            argv = tools.fp_dump_argv(self.fp, t.pid, img, logf, mode, leave_running)
        else:
            os.mkdir(img)
            argv = tools.criu_dump_argv(self.criu, t.pid, img, logf, leave_running)
        res = procs.run_tool(argv, img + ".out", self.timeout_s(w))
        fields = {"wall_ms": res["wall_ms"], "maxrss_kb": res["maxrss_kb"]}
        op = "dump -R" if leave_running else "dump"
        if res["rc"] != 0:
            fields["status"] = "unsupported" if (tool == "forkpoint" and res["rc"] == tools.FP_EXIT_UNSUPPORTED) \
                else "failed"
            fields["error"] = tools.error_summary(res, logf)
            shutil.rmtree(img, ignore_errors=True)
            return self.record(w, rnd, tool, op, mode, **fields), None
        fields["size_bytes"] = tools.du_bytes(img)
        if tool == "forkpoint":
            fields["pause_ms"] = tools.fp_manifest_ms(img, "pause_ms")
            # a pre-copy dump stops the target twice: a short first stop
            # (its userfaultfd), then the capture (pause_ms)
            fields["prestop_ms"] = tools.fp_manifest_ms(img, "prestop_ms")
        else:
            fields["freezing_ms"], fields["pause_ms"] = tools.criu_frozen_ms(img)
        if leave_running:
            ok, why = w.verify(t)
            if not ok:
                fields["status"], fields["error"] = "failed", "target broken after the dump: " + why
        else:
            try:
                t.proc.wait(10)
            except subprocess.TimeoutExpired:
                fields["status"], fields["error"] = "failed", "target still running after the dump"
        return self.record(w, rnd, tool, op, mode, **fields), img

    # ---------------------------------------------------------------- restore

    def restore(self, w, rnd, t, tool, mode, img):
        logf = self.next_dir("restore") + ".log"
        if tool == "forkpoint":
            argv = tools.fp_restore_argv(self.fp, img, logf, mode.split()[0])
        else:
            argv = tools.criu_restore_argv(self.criu, img, logf)
        if not procs.wait_gone(t.pid, 20):
            return self.record(w, rnd, tool, "restore", mode, status="failed",
                               error="pid %d still in use 20 s later" % t.pid)
        not_before = procs.boot_ticks()
        res = procs.run_tool(argv, logf + ".out", self.timeout_s(w))
        returned = procs.now()
        fields = {"wall_ms": res["wall_ms"], "maxrss_kb": res["maxrss_kb"]}
        try:
            if res["rc"] != 0:
                fields["status"] = "unsupported" if (tool == "forkpoint" and res["rc"] == tools.FP_EXIT_UNSUPPORTED) \
                    else "failed"
                fields["error"] = tools.error_summary(res, logf)
                return self.record(w, rnd, tool, "restore", mode, **fields)
            procs.own(t.pid)
            # Times count from the tool's start (runwait's clock): the
            # command's own time, plus any wait after it returned.
            late = 0.0
            if w.check_identity(t):
                deadline = returned + 5
                while w.check_identity(t) and procs.now() < deadline:
                    time.sleep(0.0005)
                late = procs.now() - returned
            why = w.check_identity(t)
            if why:
                fields["status"], fields["error"] = "failed", "restore returned 0 but " + why
                return self.record(w, rnd, tool, "restore", mode, **fields)
            fields["restore_ms"] = res["wall_ms"] + late * 1000
            ok, why = w.verify(t)
            if not ok:
                fields["status"], fields["error"] = "failed", "restored process fails verification: " + why
            else:
                fields["verified_ms"] = res["wall_ms"] + (procs.now() - returned) * 1000
            return self.record(w, rnd, tool, "restore", mode, **fields)
        finally:
            if not procs.kill_restored(t.pid, not_before):
                log("  warning: pid %d not free after the restore" % t.pid)

    # ---------------------------------------------------------------- blocks

    def guarded_start(self, w, rnd, tool, ops):
        try:
            return self.start(w)
        except RuntimeError as e:
            for op, mode in ops:
                self.record(w, rnd, tool, op, mode, status="failed", error="cannot start target: %s" % e)
            return None

    def fp_block(self, w, rnd):
        images = []
        for mode in tools.FP_DUMP_MODES:
            t = self.guarded_start(w, rnd, "forkpoint", [("dump -R", mode), ("dump", mode)])
            if not t:
                continue
            r, img = self.dump(w, rnd, t, "forkpoint", mode, True)
            if img:
                shutil.rmtree(img)
            if r["status"] != "ok" and not (procs.alive(t.pid) and w.verify(t)[0]):
                procs.stop_target(t.proc)  # broken by the failed dump: start afresh
                t = self.guarded_start(w, rnd, "forkpoint", [("dump", mode)])
                if not t:
                    continue
            r, img = self.dump(w, rnd, t, "forkpoint", mode, False)
            procs.stop_target(t.proc)
            if img and r["status"] == "ok" and mode in tools.FP_RESTORE_IMAGES:
                images.append((mode, img, t))
            elif img:
                shutil.rmtree(img)
            if r["status"] != "ok" and mode in tools.FP_RESTORE_IMAGES:
                for engine in tools.FP_ENGINES:
                    self.record(w, rnd, "forkpoint", "restore", "%s (%s img)" % (engine, mode),
                                status="no image", error="not run: its dump failed")
        for mode, img, t in images:
            for engine in tools.FP_ENGINES:
                self.restore(w, rnd, t, "forkpoint", "%s (%s img)" % (engine, mode), img)
            shutil.rmtree(img)

    def criu_block(self, w, rnd):
        ops = [("dump -R", "criu"), ("dump", "criu"), ("restore", "criu")]
        t = self.guarded_start(w, rnd, "criu", ops)
        if not t:
            return
        r, img = self.dump(w, rnd, t, "criu", "criu", True)
        if img:
            shutil.rmtree(img)
        if r["status"] != "ok" and not (procs.alive(t.pid) and w.verify(t)[0]):
            procs.stop_target(t.proc)
            t = self.guarded_start(w, rnd, "criu", ops[1:])
            if not t:
                return
        r, img = self.dump(w, rnd, t, "criu", "criu", False)
        procs.stop_target(t.proc)
        if img and r["status"] == "ok":
            self.restore(w, rnd, t, "criu", "criu", img)
        else:
            self.record(w, rnd, "criu", "restore", "criu", status="no image",
                        error="not run: its dump failed")
        if img:
            shutil.rmtree(img)

    def run(self, ws):
        for w in ws:
            log("%s (%s): %d rounds" % (w.name, w.label, self.runs))
            before = procs.cpu_snapshot()
            for rnd in range(self.runs):
                blocks = [self.fp_block, self.criu_block]
                for block in (blocks if rnd % 2 == 0 else blocks[::-1]):
                    block(w, rnd)
                procs.reap_strays()
            after = procs.cpu_snapshot()
            self.other_cpu[w.name] = round(procs.other_cpu(before, after), 2)
            log("%s done in %.0f s; other work on the machine meanwhile: %.2f cores on average" % (
                w.name, after[0] - before[0], self.other_cpu[w.name]))


def machine(fp, criu, criu_version):
    def first(path, key):
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return "?"
    try:
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                      capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    fp_version = subprocess.run([fp, "--version"], capture_output=True, text=True).stdout.strip()
    return {"kernel": os.uname().release, "cpu": first("/proc/cpuinfo", "model name"),
            "cores": os.cpu_count(), "memory": first("/proc/meminfo", "MemTotal"),
            "criu": "%s (%s)" % (criu_version, criu), "forkpoint": "%s, git %s" % (fp_version, commit)}


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    runs = int(os.environ.get("BENCH_RUNS", "3" if quick else "5"))
    # run.sh copies the binaries into the work dir first: a rebuild in the
    # tree during a long run must not change what is measured.
    bins = os.environ.get("BENCH_BIN")
    if not bins:
        sys.exit("bench: run me through bench/run.sh (`make bench`), which sets BENCH_BIN")
    out_dir = os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench/results"))
    fp = os.path.join(bins, "forkpoint")
    criu, criu_version = tools.find_criu(fp)
    ws = workloads.all_workloads(ROOT, bins, quick)
    if os.environ.get("BENCH_WORKLOADS"):
        want = os.environ["BENCH_WORKLOADS"].split(",")
        ws = [w for w in ws if w.name in want]
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (CRIU and ptrace of other sessions need it)")

    # SIGTERM/SIGHUP end the run through the same cleanup as Ctrl-C.
    def stop(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    procs.set_subreaper()
    procs.RUNWAIT = os.path.join(bins, "bench_runwait")
    work = tempfile.mkdtemp(prefix="forkpoint-bench.", dir=os.environ.get("BENCH_WORKDIR", "/var/tmp"))
    os.chdir(work)  # tools too run inside the work dir (run.sh's safety net finds them by cwd)
    started = datetime.datetime.now()
    info = machine(fp, criu, criu_version)
    info.update({"date": started.strftime("%Y-%m-%d %H:%M"), "quick": quick, "runs": runs,
                 "load_start": os.getloadavg()[0]})
    log("bench: %s; forkpoint %s; CRIU %s; work dir %s" % (
        ", ".join("%s %s" % (k, info[k]) for k in ("kernel", "cpu", "cores", "memory")),
        info["forkpoint"], info["criu"], work))
    if info["load_start"] > 0.5:
        log("bench: warning: load average %.2f before the start: something else is running, and on %d cores "
            "the numbers will be noisy" % (info["load_start"], os.cpu_count()))
    bench = Bench(fp, criu, work, runs)
    try:
        bench.run(ws)
    except KeyboardInterrupt:
        log("bench: interrupted; cleaning up, no results written")
        return 130
    finally:
        procs.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    info["duration_s"] = round((datetime.datetime.now() - started).total_seconds())
    info["load_end"] = os.getloadavg()[0]
    info["other_cpu"] = bench.other_cpu
    report.write_all(bench.records, info, out_dir, started.strftime("%Y%m%d-%H%M%S"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
