"""The Dask backend against one process: ``scan`` of 1,000 files and ``explore`` to length 7, in one run.

Run from the repository root (the ``dask`` extra installed)::

    PYTHONPATH=spec:reference python benchmarks/bench_distributed.py                  # 1,000 files, length 7
    PYTHONPATH=spec:reference python benchmarks/bench_distributed.py --files 200 --length 5   # quick

What it does, all in this one process and one run:

1. Starts a ``LocalCluster`` of ``--dask-workers`` worker processes (default
   2, one thread each, as ``--dask-workers`` does) and times its start.
2. Times a Dask round trip: ``--noop`` tasks that do nothing, through the
   same ordered map the commands use, so the per-task overhead of the
   scheduler, the pickling and the transport is known.
3. ``scan``: builds a fake home of ``--files`` generated sessions
   (``bench_scan.build_home``), judges every file in this process
   (``scan.judge_all``, one process), in a process pool of the same size
   (``--workers``) and on the cluster (``distributed.judge_all``), and checks
   the three give the same verdicts.
4. ``explore``: the reference projector on every session up to ``--length``
   events, in this process, in the process pool and on the cluster; the
   three reports must agree.
5. The bytes each task moves: the pickled size of a typical task and of its
   result, for both commands; and how fast this process alone can produce
   the tasks (the enumeration and the pickling, which the cluster cannot
   share out).

It prints markdown tables.  Nothing here asserts on a time.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scan import build_home  # noqa: E402


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def noop(i: int) -> int:
    return i


def main() -> None:
    from ctxref import distributed, scan
    from ctxref.projector import Projector, project
    from ctxspec.abstract import TABLES
    from ctxspec.contract import REFERENCE
    from ctxspec.exhaustive import SPLIT_AT, _SubtreeTask, _walk_subtree, explore_contract
    from ctxspec.explore import census
    from ctxspec.treewise import CONCRETIZE, jobs

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=40_000, help="bytes of each generated Kimi Code session (default 40,000)")
    parser.add_argument("--length", type=int, default=7)
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--noop", type=int, default=2000, help="empty tasks for the round-trip time (default 2,000)")
    args = parser.parse_args()
    n = args.dask_workers
    rows: list[str] = []
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as home:
        t, sizes = timed(lambda: build_home(home, args.files, args.size))
        print(f"built {args.files:,} sessions ({sum(sizes.values()) / 1e6:.1f} MB) in {t:.1f}s", file=sys.stderr)
        os.environ["HOME"] = home
        for var in ("KIMI_CODE_HOME", "KIMI_SHARE_DIR", "CODEX_HOME", "CLAUDE_CONFIG_DIR"):
            os.environ.pop(var, None)
        _, tasks = scan.tasks_for([])
        assert len(tasks) == args.files, f"found {len(tasks)} of {args.files} files"

        started = time.perf_counter()
        with distributed.cluster(workers=n) as client:
            cluster_start = time.perf_counter() - started
            list(distributed.ordered_map(client, noop, range(200)))  # warm: the workers import what they run
            t_noop, _ = timed(lambda: list(distributed.ordered_map(client, noop, range(args.noop))))

            print("scan ...", file=sys.stderr)
            t_scan1, one = timed(lambda: scan.judge_all(tasks))
            t_scanp, pooled = timed(lambda: scan.judge_all(tasks, workers=n))
            t_scand, dasked = timed(lambda: distributed.judge_all(client, tasks))
            assert one == pooled == dasked, "the verdicts differ"
            size = distributed.chunk_size(len(tasks), n)
            scan_task = tasks[:size]
            scan_result = distributed.judge_chunk(scan_task)

            print(f"explore --length {args.length} ...", file=sys.stderr)
            run = partial(explore_contract, args.length, partial(project, policy=REFERENCE), incremental=partial(Projector, policy=REFERENCE))
            t_ex1, r1 = timed(run)
            t_exp, rp = timed(lambda: run(workers=n))
            t_exd, rd = timed(lambda: run(map_chunks=distributed.OnCluster(client)))
            for r in (rp, rd):
                assert (r.sessions, r.concretized, r.checked, r.failed) == (r1.sessions, r1.concretized, r1.checked, r1.failed), "the reports differ"
    load_after = os.getloadavg()[0]

    # explore's tasks are subtrees: the sessions of SPLIT_AT events root them, and each walks its own
    ex_tasks = [
        _SubtreeTask(job, args.length, 2, partial(project, policy=REFERENCE), partial(Projector, policy=REFERENCE), CONCRETIZE, TABLES, REFERENCE, 10)
        for job in jobs(args.length, 2, SPLIT_AT, TABLES)
    ]
    work: list[float] = []
    results = []
    for task in ex_tasks:
        t, done = timed(lambda: _walk_subtree(task))
        work.append(t)
        results.append(done)
    ex_task, ex_result = ex_tasks[0], results[0]

    def enumerate_and_pickle() -> int:
        made = 0
        for job in jobs(args.length, 2, SPLIT_AT, TABLES):
            pickle.dumps(_SubtreeTask(job, args.length, 2, ex_task.projector, ex_task.incremental, CONCRETIZE, TABLES, REFERENCE, 10))
            made += 1
        return made

    t_enum, made = timed(enumerate_and_pickle)
    total = census(args.length, 2, TABLES).total
    scan_tasks = -(-len(tasks) // size)

    print(f"Python {platform.python_version()}, {os.cpu_count()} cores; LocalCluster of {n} worker processes (1 thread each), started in {cluster_start:.1f} s")
    print(f"load average {load_before:.2f} before, {load_after:.2f} after (other people's work on the same cores)")
    print()
    print(f"| run | one process | process pool ({n}) | Dask ({n} workers) | speed-up of Dask over one process | over the pool |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, a, b, c in (
        (f"scan, {len(tasks):,} files ({sum(sizes.values()) / 1e6:.0f} MB)", t_scan1, t_scanp, t_scand),
        (f"explore --length {args.length} ({total:,} sessions, {r1.checked:,} logs)", t_ex1, t_exp, t_exd),
    ):
        rows.append(f"| {name} | {a:.2f} s | {b:.2f} s | {c:.2f} s | {a / c:.2f} × | {b / c:.2f} × |")
    print("\n".join(rows))
    print()
    print("| per task | scan | explore |")
    print("| --- | --- | --- |")
    print(f"| what a task holds | {size} file paths | the path to one session of {SPLIT_AT} events: its subtree |")
    print(f"| tasks in the run | {scan_tasks:,} | {made:,} |")
    print(f"| pickled task | {len(pickle.dumps(scan_task)):,} B | {len(pickle.dumps(ex_task)):,} B (the first) |")
    print(f"| pickled result | {len(pickle.dumps(scan_result)):,} B | {len(pickle.dumps(ex_result)):,} B (the first) |")
    print(f"| worker time per task | {t_scan1 / scan_tasks * 1000:.1f} ms (one process's time / tasks) "
          f"| median {statistics.median(work) * 1000:.1f} ms, largest {max(work) * 1000:.0f} ms, all {sum(work):.1f} s |")
    print()
    print(f"Dask round trip: {args.noop:,} empty tasks through the ordered map in {t_noop:.2f} s = {args.noop / t_noop:,.0f} tasks/s")
    print(f"this process alone makes and pickles the {made} explore tasks in {t_enum * 1000:.0f} ms")
    print(f"the largest explore task is {max(work) / sum(work):.1%} of the work: the run cannot take less than it")


if __name__ == "__main__":
    main()
