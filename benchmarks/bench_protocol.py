"""Benchmark of the projector protocol: verify's rate through a child, and a request's cost on a long session.

Run from the repository root::

    .venv/bin/python benchmarks/bench_protocol.py                 # 300 programs, a 100,000-event session
    .venv/bin/python benchmarks/bench_protocol.py --programs 100 --events 20000

What it does, all in one run so the ratios are what to read:

1. The search behind ``verify`` (ci profile, derandomized: the same programs
   for each), with the other-process check on as ``verify`` runs it, for the
   reference projector three ways: in this process as a JSON projector
   (``verify --projector ctxref.projector:project_json``), in a stateful
   Python child (``examples/adapters/python/child.py``) and in a stateless
   one (``child.py --stateless``).  Programs per second, and each child's
   rate over the in-process rate.
2. A generated session of ``--events`` events (``bench_projector``'s
   generator), fed to a stateful and a stateless child request by request:
   the time per request over a window of requests early in the session and
   one late in it.  A stateful child is sent only the new records, so its
   late/early ratio says whether the cost grows with the session.

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_projector import generate_log  # noqa: E402

from ctxref.elsewhere import other_hash_seed, other_process  # noqa: E402
from ctxref.protocol import ChildProjector  # noqa: E402
from ctxspec.checker import search  # noqa: E402
from ctxspec.contract import Projector, json_projector  # noqa: E402
from ctxspec.events import Event  # noqa: E402
from ctxspec.messages import messages_to_openai  # noqa: E402

CHILD = [sys.executable, str(ROOT / "examples" / "adapters" / "python" / "child.py")]


def rate(projector: Projector, elsewhere: Projector, programs: int) -> float:
    done = 0

    def count(events: int) -> None:
        nonlocal done
        done += 1

    gc.collect()
    start = time.perf_counter()
    found = search(projector, max_examples=programs, elsewhere=elsewhere, on_program=count)
    seconds = time.perf_counter() - start
    assert not found.findings, [str(v) for f in found.findings for v in f.violations]
    return done / seconds


def children(argv: list[str]) -> tuple[ChildProjector, ChildProjector]:
    here = ChildProjector(argv)
    there = ChildProjector(argv, env=dict(os.environ, PYTHONHASHSEED=other_hash_seed()))
    here.start()
    there.start()
    return here, there


def per_request(child: ChildProjector, log: Sequence[Event], points: Sequence[int]) -> tuple[float, float, float]:
    """Over ``points`` (each a log length ending at a step.begin), fed in order: seconds, messages and KB per request."""
    child(log[: points[0]])  # everything before the window, not timed
    gc.collect()
    answers = []
    start = time.perf_counter()
    for n in points[1:]:
        answers.append(child(log[:n]))
    seconds = (time.perf_counter() - start) / (len(points) - 1)
    size = sum(len(json.dumps(messages_to_openai(a))) for a in answers) / 1000
    return seconds, sum(map(len, answers)) / len(answers), size / len(answers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=200, help="requests per timed window")
    args = parser.parse_args(argv)

    print(f"## verify through a child: programs/s over {args.programs} programs (ci profile)\n")
    print("| projector | programs/s | over in-process |")
    print("|---|---|---|")
    from ctxref.projector import project_json

    inproc = rate(json_projector(project_json), other_process("ctxref.projector:project_json"), args.programs)
    print(f"| reference, in this process (`--projector`) | {inproc:.1f} | 1.00 × |")
    for label, extra in (("stateful child (`--projector-cmd`)", []), ("stateless child (`--projector-cmd`)", ["--stateless"])):
        here, there = children(CHILD + extra)
        try:
            r = rate(here, there, args.programs)
        finally:
            here.close()
            there.close()
        print(f"| reference, {label} | {r:.1f} | {r / inproc:.2f} × |")

    log = generate_log(args.events, 7)
    points = [i + 1 for i, e in enumerate(log) if e.type == "step.begin"]
    w = args.window
    # The early window starts a tenth into the session, once compactions hold the context at its usual size:
    # a request costs what it sends, and the question is whether it also costs what came before.
    first = next(k for k, n in enumerate(points) if n >= len(log) // 10)
    early, late = points[first : first + w + 1], points[-w - 1 :]
    print(f"\n## One request on a {len(log):,}-event session: time per request, {w} requests a window\n")
    print("| child | early (after ~{:,} events) | late (after ~{:,} events) | late / early |".format(early[0], late[0]))
    print("|---|---|---|---|")
    for label, extra, k in (("stateful", [], w), ("stateless (fewer requests: each sends the whole session)", ["--stateless"], max(5, w // 20))):
        with ChildProjector(CHILD + extra, timeout=600) as child:
            a, m, x = per_request(child, log, early[: k + 1])
            b, n, y = per_request(child, log, late[-k - 1 :])
        print(f"| {label} | {a * 1e3:.2f} ms ({m:,.0f} messages, {x:,.0f} KB) | {b * 1e3:.2f} ms ({n:,.0f} messages, {y:,.0f} KB) | {b / a:.2f} × |")
    print(f"\n{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
