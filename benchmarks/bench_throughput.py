"""verify's throughput before and after a change: programs per second, in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_throughput.py [--before REV] [--programs 300] [--rounds 3]

The checkout at ``REV`` (a temporary git worktree) and this checkout take
turns, each round in a fresh child process of this venv: ``search`` (the
engine of ``verify``, ci profile) runs the reference projector for
``--programs`` programs, then each catalogue mutant until its first finding.
Printed: per projector, programs per second before and after (the median of
the rounds) and their ratio, and the share of the time spent in the
checker (``SessionChecker``: projecting, judging) rather than in generating
the programs.  The two versions may draw different programs (what the
generator draws changed between them); the rate is what is compared.  No
timed assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from ctxspec import contract
from ctxspec.checker import search
from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project

spent = [0.0]
feed = contract.SessionChecker.feed
def timed_feed(self, event):
    start = time.perf_counter()
    try:
        return feed(self, event)
    finally:
        spent[0] += time.perf_counter() - start
contract.SessionChecker.feed = timed_feed

def run(projector, cls, **kw):
    programs = [0]
    spent[0] = 0.0
    start = time.perf_counter()
    search(projector, incremental=cls, on_program=lambda n: programs.__setitem__(0, programs[0] + 1), **kw)
    seconds = time.perf_counter() - start
    return {"programs": programs[0], "seconds": seconds, "checker": spent[0]}

out = {"reference": run(project, Projector, max_examples=int(sys.argv[1]), limit=1)}
catalogue = [run(m.project, m.cls) for _, m in sorted(MUTANTS.items())]
out["catalogue"] = {k: sum(r[k] for r in catalogue) for k in ("programs", "seconds", "checker")}
print(json.dumps(out))
"""


def child(paths: list[str], programs: int) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPOTHESIS", "PYTHONPATH"))}
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["CI"] = "true"
    done = subprocess.run([sys.executable, "-c", CHILD, str(programs)], env=env, capture_output=True, text=True, check=True)
    result: dict[str, dict[str, float]] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="73338ff", help="the revision to compare with (default 73338ff)")
    parser.add_argument("--programs", type=int, default=300, help="programs of the reference projector per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        tree = os.path.join(tmp, "before")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", tree, args.before], check=True)
        try:
            versions = {"before": [os.path.join(tree, "spec"), os.path.join(tree, "reference")], "after": [str(ROOT / "spec"), str(ROOT / "reference")]}
            rounds: dict[str, list[dict[str, dict[str, float]]]] = {"before": [], "after": []}
            for i in range(args.rounds):
                for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
                    rounds[name].append(child(versions[name], args.programs))
                    print(f"round {i + 1}: {name} done", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tree], check=True)
    print(f"## verify throughput: {args.before} against this checkout, {args.rounds} rounds in turns (medians)\n")
    print("| projector | programs/s before | programs/s after | after / before | checker's share before | after |")
    print("|---|---|---|---|---|---|")
    for what, label in (("reference", f"reference, {args.programs} programs"), ("catalogue", "12 mutants, each to its first finding")):
        rate = {k: statistics.median(r[what]["programs"] / r[what]["seconds"] for r in v) for k, v in rounds.items()}
        share = {k: statistics.median(r[what]["checker"] / r[what]["seconds"] for r in v) for k, v in rounds.items()}
        print(f"| {label} | {rate['before']:.1f} | {rate['after']:.1f} | {rate['after'] / rate['before']:.2f} × | {share['before']:.0%} | {share['after']:.0%} |")


if __name__ == "__main__":
    main()
