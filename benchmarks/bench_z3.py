"""Benchmark of the Z3 model and the explicit exploration of the abstract session.

Run from the repository root (with the package installed, or with
``PYTHONPATH=spec``)::

    python benchmarks/bench_z3.py
    python benchmarks/bench_z3.py --depth 30 --slots 4 --bfs-length 8

What it times (``time.perf_counter``, one run each; Z3 is deterministic):

1. bounded model checking to ``--depth`` events with ``--slots`` slots
   (``z3model.bmc``; the time includes computing the per-slot lemma, shown
   separately), and, with ``--plain``, the same without the lemma;
2. the unbounded proof (``z3model.prove``, Z3's HORN engine) for 2..``--slots``
   slots, and the re-check of the invariant it finds;
3. the per-slot invariant (``z3model.slot_invariant``) for 2..``--slots`` slots;
4. breadth-first enumeration of the abstract sessions of at most
   ``--bfs-length`` events with 2 slots, modulo renaming (``explore.census``).

It prints a markdown table and the machine it ran on.  Nothing here asserts
on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import z3

from ctxspec import z3model
from ctxspec.explore import census


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=30)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--bfs-length", type=int, default=8)
    parser.add_argument("--plain", action="store_true", help="also time BMC without the per-slot lemma (slow)")
    args = parser.parse_args()

    rows: list[tuple[str, str, str]] = []

    z3model.slot_invariant.cache_clear()
    b = z3model.bmc(args.depth, args.slots)
    verdict = "no violation" if not b.found else f"{','.join(f.value for f in b.faults)} at {len(b.trace or ())}"
    rows.append((f"BMC K={args.depth} N={args.slots}", f"{b.seconds:.2f} s (lemma {b.lemma_seconds:.2f} s)", verdict))
    if args.plain:
        p = z3model.bmc(args.depth, args.slots, lemma=False)
        rows.append((f"BMC K={args.depth} N={args.slots}, no lemma", f"{p.seconds:.2f} s", "no violation" if not p.found else "violation"))

    for n in range(2, args.slots + 1):
        proof = z3model.prove(n)
        start = time.perf_counter()
        ok = proof.formula is not None and z3model.check_invariant(proof.formula, n)
        recheck = time.perf_counter() - start
        rows.append((f"HORN proof N={n}", f"{proof.seconds:.2f} s (re-check {recheck:.2f} s)", f"{proof.status}, invariant re-checked: {ok}"))

    for n in range(2, args.slots + 1):
        z3model.slot_invariant.cache_clear()
        inv = z3model.slot_invariant(n)
        rows.append((f"per-slot invariant N={n}", f"{inv.seconds:.2f} s", f"{len(inv.views)} views, safe: {inv.safe}"))

    c = census(args.bfs_length, 2)
    rows.append((f"BFS L={args.bfs_length} N=2 (modulo renaming)", f"{c.seconds:.2f} s", f"{c.total:,} sessions, {c.rate:,.0f} sessions/s"))

    print("| what | time | result |")
    print("|---|---:|---|")
    for what, seconds, result in rows:
        print(f"| {what} | {seconds} | {result} |")
    print()
    print(f"Python {platform.python_version()}, z3 {z3.get_version_string()}, {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")


if __name__ == "__main__":
    main()
