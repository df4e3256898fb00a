"""What a provider's rules cost: the rendering property per provider, and one big request.

Run from the repository root::

    PYTHONPATH=spec:reference python benchmarks/bench_providers.py
    PYTHONPATH=spec:reference python benchmarks/bench_providers.py --length 4 --logs 200   # quick

What it does, in one process:

1. The rendering property of ``tests/test_providers.py``, per provider: every
   session of at most ``--length`` events that ends at a request (2 slots,
   OpenAI-style and Kimi-style ids), and ``--logs`` generated logs (drawn
   once, derandomized), each projected by the reference projector once; then
   for each provider, the time to render every projection and judge it by
   the provider's rules, plain and in thinking mode.  The time to project
   the same logs is printed beside it: the ratio says what the provider's
   check adds to a projection.
2. One big request: the reference projection at the end of a generated
   5 MB Kimi Code session (``bench_formats.generate``, its compactions left
   out so the request holds the whole session), rendered and judged for each
   provider, median of ``--rounds``.

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from bench_formats import generate  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from ctxref.formats import load  # noqa: E402
from ctxref.projector import project  # noqa: E402
from ctxref.render import RENDERERS, Options  # noqa: E402
from ctxspec.events import Event  # noqa: E402
from ctxspec.messages import Message  # noqa: E402
from ctxspec.providers import PROVIDERS  # noqa: E402
from ctxspec.strategies import session_logs  # noqa: E402
from test_providers import requests, with_reasoning  # noqa: E402


def generated(n: int) -> list[tuple[Event, ...]]:
    logs: list[tuple[Event, ...]] = []

    @settings(max_examples=n, phases=[Phase.generate], derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(log=session_logs())
    def draw(log: tuple[Event, ...]) -> None:
        logs.append(log)

    draw()
    return logs


def judge_all(provider: str, projections: list[list[Message]]) -> tuple[float, int]:
    render, rules = RENDERERS[provider], PROVIDERS[provider]
    start = time.perf_counter()
    rejected = 0
    for messages in projections:
        for thinking in (False, True):
            sent = with_reasoning(messages) if thinking else messages
            rejected += bool(rules.check(render(sent, Options(thinking=thinking))))
    return time.perf_counter() - start, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=5)
    parser.add_argument("--logs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    logs = list(requests(args.length)) + generated(args.logs)
    start = time.perf_counter()
    projections = [project(log) for log in logs]
    projecting = time.perf_counter() - start
    print(f"rendering property: {len(logs):,} logs ({len(requests(args.length)):,} sessions of at most {args.length} events, {args.logs:,} generated); projecting them: {projecting:.2f} s\n")
    print("| provider | rules | render + judge, plain and thinking | per log | ÷ projecting | rejected |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, p in PROVIDERS.items():
        seconds, rejected = judge_all(name, projections)
        print(f"| {name} | {len(p.rules)} | {seconds:.2f} s | {seconds / len(logs) * 1e6:,.0f} µs | {seconds / projecting:.2f} × | {rejected} |")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "wire.jsonl")
        generate(path, 5 * 1024 * 1024)
        # without its compactions, so that the request holds the whole session
        messages = project(e for e in load(path).log if e.type != "compaction")
    times: dict[str, tuple[float, float]] = {}
    for name in PROVIDERS:
        renders, checks = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            payload = RENDERERS[name](messages, Options())
            middle = time.perf_counter()
            found = PROVIDERS[name].check(payload)
            renders.append(middle - start)
            checks.append(time.perf_counter() - middle)
            assert not found, found[0]
        times[name] = (statistics.median(renders), statistics.median(checks))
    print(f"\none request: the projection at the end of a 5 MB Kimi Code session, no compaction ({len(messages):,} messages), median of {args.rounds}\n")
    print("| provider | render | judge |")
    print("| --- | --- | --- |")
    for name, (r, c) in times.items():
        print(f"| {name} | {r * 1000:.1f} ms | {c * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
