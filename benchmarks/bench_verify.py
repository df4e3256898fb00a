"""The search that keeps going: time to the first finding, and its cost per program.

Run from the repository root::

    .venv/bin/python benchmarks/bench_verify.py [--preset codex] [--programs 300]

Prints markdown tables:

* for each catalogue mutant, the seconds and programs until ``search`` (the
  engine of ``verify``, ci profile) has its first finding, under the
  ``reference`` policy and under ``--preset`` (the mutant then follows that
  preset wherever it is not broken), and the median over the catalogue;
* programs per second with ``limit=1`` and ``limit=5`` (``--keep-going``)
  for the reference projector (which never fails, so only the collector's
  bookkeeping differs) and for a mutant that fails often (with limit 1 it
  stops at its first finding; with limit 5 it shrinks each failing program
  until five distinct findings), at most ``--programs`` programs each, in
  turns in one process.

No timed assertions.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxspec.checker import search
from ctxspec.policy import PRESETS


def first_finding(name: str, preset: str) -> tuple[float, int, str]:
    mutant = MUTANTS[name]
    policy = PRESETS[preset]
    run, inc = mutant.following(policy)
    programs = [0]
    start = time.perf_counter()
    found = search(run, incremental=inc, policy=policy, on_program=lambda n: programs.__setitem__(0, programs[0] + 1))
    seconds = time.perf_counter() - start
    key = f"{found.findings[0].rule} {found.findings[0].level.value}" if found.findings else "survived"
    return seconds, programs[0], key


def rate(run: object, inc: object, limit: int, programs: int) -> tuple[float, int]:
    count = [0]
    start = time.perf_counter()
    found = search(run, incremental=inc, limit=limit, max_examples=programs, on_program=lambda n: count.__setitem__(0, count[0] + 1))  # type: ignore[arg-type]
    return count[0] / (time.perf_counter() - start), len(found.findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="codex", help="the second policy (default codex)")
    parser.add_argument("--programs", type=int, default=300, help="programs per rate measurement")
    args = parser.parse_args()

    print(f"## Time to the first finding (ci profile), reference and {args.preset}\n")
    print(f"| mutant | reference | {args.preset} |")
    print("|---|---|---|")
    medians: dict[str, list[float]] = {"reference": [], args.preset: []}
    for name in sorted(MUTANTS):
        cells = []
        for preset in ("reference", args.preset):
            seconds, programs, key = first_finding(name, preset)
            medians[preset].append(seconds)
            cells.append(f"{seconds:.2f} s, {programs} programs ({key})")
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    print(f"| **median** | **{statistics.median(medians['reference']):.2f} s** | **{statistics.median(medians[args.preset]):.2f} s** |")

    print(f"\n## Programs per second, {args.programs} programs each, limit 1 and 5 in turns\n")
    print("| projector | limit 1 | limit 5 (--keep-going 5) | limit 5 / limit 1 | findings at limit 5 |")
    print("|---|---|---|---|---|")
    mutant = MUTANTS["late_result_moved_up"]
    for label, run, inc in (("reference (no finding)", project, Projector), ("late_result_moved_up", mutant.project, mutant.cls)):
        one, _ = rate(run, inc, 1, args.programs)
        five, n = rate(run, inc, 5, args.programs)
        print(f"| {label} | {one:.1f}/s | {five:.1f}/s | {five / one:.2f} × | {n} |")


if __name__ == "__main__":
    main()
