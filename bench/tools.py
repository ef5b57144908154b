"""The two tools under test: their command lines, and what each reports about
a dump (forkpoint: pause_ms in forkpoint.manifest; CRIU: freezing and frozen
time in its stats-dump image, decoded with crit)."""
import json
import os
import re
import subprocess

FP_EXIT_UNSUPPORTED = 4

# forkpoint dump variants: name -> extra flags. "no-fsync" is CRIU's own
# behaviour (it does not sync images), so it is the like-for-like comparison.
FP_DUMP_MODES = {
    "zstd": ["--compress", "zstd"],
    "none": ["--compress", "none"],
    "zstd/no-fsync": ["--compress", "zstd", "--no-fsync"],
    "none/no-fsync": ["--compress", "none", "--no-fsync"],
}
# Images restored each round (the fsync'd ones; the bytes are the same).
FP_RESTORE_IMAGES = ["zstd", "none"]
FP_ENGINES = ["native", "criu"]


def find_criu(fp):
    """The CRIU forkpoint itself uses, as `forkpoint doctor` decides it (4.x,
    `criu check`, and a dump and restore that finish in time). Returns (path,
    version) or raises RuntimeError saying why every candidate was refused."""
    r = subprocess.run([fp, "doctor", "--cached", "--json"], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise RuntimeError("forkpoint doctor failed: %s" % (r.stderr.strip() or r.returncode))
    d = json.loads(r.stdout)
    for c in d["candidates"]:
        if c["in_use"]:
            return c["path"], c["version"]
    why = "; ".join(c["refused_because"] or "" for c in d["candidates"])
    raise RuntimeError("no usable CRIU (%s); run `make setup`, see `forkpoint doctor`" % why)


def fp_dump_argv(fp, pid, img, log, mode, leave_running):
    argv = [fp, "dump", "-t", str(pid), "-D", img, "-o", log] + FP_DUMP_MODES[mode]
    return argv + (["--leave-running"] if leave_running else [])


def fp_restore_argv(fp, img, log, engine):
    return [fp, "restore", "-D", img, "-d", "--engine", engine, "-o", log]


def criu_dump_argv(criu, pid, img, log, leave_running):
    argv = [criu, "dump", "-t", str(pid), "-D", img, "-o", log]
    return argv + (["--leave-running"] if leave_running else [])


def criu_restore_argv(criu, img, log):
    return [criu, "restore", "-d", "-D", img, "-o", log]


def fp_manifest_ms(img, key):
    """A number from the snapshot's manifest ("pause_ms", "prestop_ms"), or
    None."""
    try:
        with open(os.path.join(img, "forkpoint.manifest")) as f:
            for line in f:
                if line.startswith(key + " "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def criu_frozen_ms(img):
    """CRIU's own (freezing_ms, frozen_ms) from stats-dump, or (None, None).
    frozen_time runs from "all tasks frozen" to unfreeze (or kill)."""
    path = os.path.join(img, "stats-dump")
    if not os.path.exists(path):
        return None, None
    try:
        out = subprocess.run(["crit", "decode", "-i", path], capture_output=True, text=True,
                             timeout=60)
        dump = json.loads(out.stdout)["entries"][0]["dump"]
        return dump["freezing_time"] / 1000.0, dump["frozen_time"] / 1000.0
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError):
        return None, None


def du_bytes(path):
    """Disk usage of a directory tree, as du counts it (allocated blocks,
    hard links once)."""
    seen, total = set(), 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


# CRIU logs this on every run here (the hard RLIMIT_NOFILE is below what it
# asks for) and carries on: not the reason for a failure.
BENIGN = ("Can't setup RLIMIT_NOFILE",)


def error_summary(result, log_path):
    """One line saying why a tool run failed: its own message, else the
    first error lines of its log."""
    if result["timed_out"]:
        return "timed out (killed)"
    lines = [l.strip() for l in result["output"].splitlines() if l.strip()]
    msg = next((l for l in lines if re.search(r"error|fail|cannot|refus|not supported|unsupported", l, re.I)),
               lines[-1] if lines else "")
    if not msg or "see" in msg.lower():
        try:
            with open(log_path, errors="replace") as f:
                errs = [l.strip() for l in f if ("Error (" in l or l.startswith("Error"))
                        and not any(b in l for b in BENIGN)]
            if errs:
                msg = (msg + " | " if msg else "") + " / ".join(errs[:2])
        except OSError:
            pass
    return "exit %d: %s" % (result["rc"], msg[:400]) if msg else "exit %d" % result["rc"]


def warm_memory(binary):
    """Touches the machine's free memory once (bench/warm_memory.c: in a VM
    whose host backs guest memory lazily, fresh page cache costs a host
    fault a page, which both tools would otherwise pay in what is measured).
    Returns its report line for the results' head."""
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} missing: make all")
    r = subprocess.run([binary], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"{binary} failed: {r.stderr.strip()}")
    return r.stdout.strip()
