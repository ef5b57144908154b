#!/usr/bin/env python3
"""A small search with forkpoint: set up a state once, snapshot it, and try
four different commands, each from exactly that state; compare what they
found and clean everything up.

A real harness would try four fixes of a failing build, four moves of a
game, four prompts of an agent. Here the state is a shell in a workspace
holding a data file, with a variable and a function defined, and each
candidate finds the smallest number of the file in its own way, then
damages the state (removes the file, changes the variable). Each candidate
still starts from the intact state: four branches of the snapshot run side
by side, each a separate copy of the shell on a terminal of its own. Where
branch is impossible (not root: no namespaces), the session is restored to
the snapshot before each candidate instead.

    sudo python3 examples/search.py      (root: the workspace is an overlay)
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import forkpoint  # noqa: E402

CANDIDATES: Dict[str, str] = {
    "sort": "sort -n data | head -n 1",
    "awk": "awk 'NR == 1 || $1 < m { m = $1 } END { print m }' data",
    "bash": "m=; while read -r n; do [[ -z $m || $n -lt $m ]] && m=$n; done < data; echo $m",
    "python": "python3 -c 'import sys; print(min(int(l) for l in open(\"data\")))'",
}
# What every candidate does after answering: it must not be seen by the next.
DAMAGE = "; rm -f data; tag=$tag-damaged"


def run_one(s: forkpoint.Session, cmd: str) -> Tuple[str, str, int]:
    """(answer, the state as the candidate found it, duration in ms)."""
    seen = s.exec("echo $tag $(check) $(wc -l < data)").stdout.strip()
    r = s.exec(cmd + DAMAGE)
    if not r.ok:
        raise SystemExit(f"candidate failed: {cmd}: exit {r.exit_code}: {r.stderr.strip()}")
    return r.stdout.strip(), seen, r.duration_ms


def main() -> int:
    numbers = random.Random(7).sample(range(1000, 100000), 2000)
    with tempfile.TemporaryDirectory(prefix="fp-search.") as work:
        (Path(work) / "data").write_text("".join(f"{n}\n" for n in numbers))
        workdir = work if os.geteuid() == 0 else None
        results: Dict[str, Tuple[str, str, int]] = {}
        with forkpoint.Session.create(shell=True, workdir=workdir) as s:
            s.exec(f"cd {work} && tag=base && check() {{ echo intact; }}")
            s.snap("base")
            try:
                branches: List[forkpoint.Session] = s.branch("base", n=len(CANDIDATES))
            except (forkpoint.NotAvailableError, forkpoint.ForkpointPermissionError) as e:
                # branch needs root (pid and mount namespaces) and a library that has it
                print(f"{e.message.split(';')[0]}: running the "
                      f"{len(CANDIDATES)} candidates one after another, restoring 'base' before each")
                for name, cmd in CANDIDATES.items():
                    s.restore("base")
                    results[name] = run_one(s, cmd)
            else:
                print(f"{len(branches)} branches of 'base': {', '.join(b.name for b in branches)}")
                try:
                    for b, (name, cmd) in zip(branches, CANDIDATES.items()):
                        results[name] = run_one(b, cmd)
                finally:
                    for b in branches:
                        b.cleanup()
        leftover = [p.name for p in Path(work).iterdir()]
    for name, (answer, seen, ms) in results.items():
        print(f"  {name:<8} found {answer:>6} in {ms:>4} ms, starting from: {seen}")
    answers = {answer for answer, _, _ in results.values()}
    starts = {seen for _, seen, _ in results.values()}
    expected = f"base intact {len(numbers)}"
    if answers != {str(min(numbers))} or starts != {expected}:
        print(f"MISMATCH: answers {sorted(answers)} (expected {min(numbers)}), "
              f"starting states {sorted(starts)} (expected '{expected}')")
        return 1
    fastest = min(results, key=lambda k: results[k][2])
    print(f"all {len(results)} agree: the minimum is {min(numbers)}; each started from the same state; "
          f"fastest: {fastest}")
    if workdir and leftover != ["data"]:
        print(f"MISMATCH: the workspace's own directory changed: {leftover}")
        return 1
    print("cleaned up: the session, its snapshot and its workspace are gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
