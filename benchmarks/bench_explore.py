"""Bounded-exhaustive exploration: throughput, and each mutant's shortest counterexample.

Run from the repository root::

    .venv/bin/python benchmarks/bench_explore.py [--length 8] [--max-length 6] [--workers 2]

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
    parser.add_argument("--length", type=int, default=8, help="exhaustive exploration bound (default 8)")
    parser.add_argument("--from-length", type=int, default=5, help="first length of the table (default 5)")
    parser.add_argument("--per-session-length", type=int, default=8, help="longest length also run per session (default 8: ~4 min at 2 processes)")
    parser.add_argument("--max-length", type=int, default=6, help="bound of the shortest-counterexample search")
    parser.add_argument("--variant-length", type=int, default=5, help="bound of the run over every concretization variant")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel runs (default 2)")
    parser.add_argument("--skip", action="append", default=[], help="mutant to skip (repeatable)")
    args = parser.parse_args()

    print(f"## Exhaustive exploration, reference projector, 2 slots: along the tree and per session\n")
    print("Each length is run per session (check_session on every session that ends at a request), then along")
    print(f"the enumeration tree (each request judged once), in one process and in {args.workers}; the same counts are asserted.\n")
    print(f"| L | sessions (<= L) | requests judged | per session, {args.workers} proc. | tree, 1 proc. | tree, {args.workers} proc. "
          f"| speed-up, {args.workers} proc. | sessions/s, tree, {args.workers} proc. |")
    print("|---|---|---|---|---|---|---|---|")
    for length in range(args.from_length, args.length + 1):
        slow = explore_contract(length, project, incremental=Projector, workers=args.workers, tree=False) if length <= args.per_session_length else None
        one = explore_contract(length, project, incremental=Projector)
        many = explore_contract(length, project, incremental=Projector, workers=args.workers)
        counts = {(r.sessions, r.checked, r.failed) for r in (slow, one, many) if r is not None}
        assert len(counts) == 1, counts
        per = f"{slow.seconds:.2f} s" if slow is not None else "not run"
        ratio = f"{slow.seconds / many.seconds:.1f} x" if slow is not None else ""
        print(f"| {length} | {one.sessions:,} | {one.checked:,} | {per} | {one.seconds:.2f} s | {many.seconds:.2f} s | {ratio} "
              f"| {many.sessions / many.seconds:,.0f} |", flush=True)
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
