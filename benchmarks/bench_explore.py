"""Bounded-exhaustive exploration: throughput, and each mutant's shortest counterexample.

Run from the repository root::

    .venv/bin/python benchmarks/bench_explore.py [--length 6] [--max-length 6]

Prints markdown tables: sessions enumerated and logs checked per length with
sessions/s (the reference projector against the whole contract), then per
mutant the length and search time of the shortest counterexample next to the
Hypothesis counterexample's length.  No timed assertions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxspec.events import load_log
from ctxspec.exhaustive import explore_contract, shortest_counterexample
from ctxspec.explore import ALL_VARIANTS, census

REGRESSIONS = Path(__file__).resolve().parent.parent / "tests" / "regressions"
SLOTS = {"first_parallel_result_only_on_resume": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=6, help="exhaustive exploration bound (default 6: ~1 min)")
    parser.add_argument("--max-length", type=int, default=6, help="bound of the shortest-counterexample search")
    parser.add_argument("--variant-length", type=int, default=5, help="bound of the run over every concretization variant")
    parser.add_argument("--workers", type=int, default=1, help="processes for the exhaustive runs (default 1)")
    parser.add_argument("--skip", action="append", default=[], help="mutant to skip (repeatable)")
    args = parser.parse_args()

    print(f"## Exhaustive exploration, reference projector, 2 slots, {args.workers} process(es)\n")
    print("| L | sessions (<= L) | logs checked | violations | seconds | sessions/s |")
    print("|---|---|---|---|---|---|")
    for length in range(1, args.length + 1):
        report = explore_contract(length, project, incremental=Projector, workers=args.workers)
        rate = report.sessions / report.seconds if report.seconds else float("inf")
        print(f"| {length} | {report.sessions:,} | {report.checked:,} | {report.failed} | {report.seconds:.2f} | {rate:,.0f} |", flush=True)
    report = explore_contract(args.variant_length, project, incremental=Projector, variants=ALL_VARIANTS, workers=args.workers)
    print(f"\nEvery faithful concretization variant (reused ids, any cut, any undo count): {report}.")
    start = time.perf_counter()
    c = census(8, 2)
    print(f"\nEnumeration alone (no checking) to L=8: {c.total:,} sessions in {time.perf_counter() - start:.1f}s.\n")

    print("## Shortest counterexample per mutant (iterative deepening, all concretization variants)\n")
    print("| mutant | slots | shortest | Hypothesis | logs checked | seconds | rules broken |")
    print("|---|---|---|---|---|---|---|")
    for name in sorted(MUTANTS):
        if name in args.skip:
            continue
        m = MUTANTS[name]
        slots = SLOTS.get(name, 2)
        hyp = len(load_log(str(REGRESSIONS / f"{name}.jsonl"))) - 1
        found = shortest_counterexample(m.project, incremental=m.cls, rules=m.rules, max_length=args.max_length, slots=slots)
        if found is None:
            print(f"| {name} | {slots} | none <= {args.max_length} | {hyp} | | | |", flush=True)
            continue
        rules = " ".join(sorted(found.failure.rules))
        print(f"| {name} | {slots} | {found.length} | {hyp} | {found.checked:,} | {found.seconds:.2f} | {rules} |", flush=True)


if __name__ == "__main__":
    main()
