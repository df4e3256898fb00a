"""``check LOG --request CAPTURED`` beside ``check LOG``, on generated Kimi Code sessions.

Run from the repository root::

    PYTHONPATH=spec:reference python benchmarks/bench_request.py                 # 1, 5 and 20 MB
    PYTHONPATH=spec:reference python benchmarks/bench_request.py --sizes 1       # quick

What it does:

1. Writes each session with ``bench_formats.generate`` (the seeded Kimi Code
   ``wire.jsonl`` of the other benchmarks: parallel calls, steers, cancels,
   crashes, late results, a compaction every 40 turns).
2. Builds two captured requests from the reference projection at its end:
   the projection itself with compact argument JSON and another system
   prompt (what a runtime sends), and the same with one tool message taken
   out of the middle (the TodoList:3 bug).
3. Times, in this process, ``ctxcontract check LOG`` and ``check LOG
   --request`` with each request, ``--rounds`` times (default 3), and prints
   the median seconds and the ratios to plain ``check``, with the number of
   findings each gives (0, then 1).

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_formats import generate  # noqa: E402

from ctxref.cli import main  # noqa: E402


def _requests(log: str, folder: str) -> tuple[str, str]:
    projected = os.path.join(folder, "projected.json")
    assert main(["project", log, "-o", projected, "--force"], out=io.StringIO()) == 0
    with open(projected, encoding="utf-8") as handle:
        messages = json.load(handle)
    for m in messages:
        if m["role"] == "system":
            m["content"] = "You are a coding agent.\nWorking directory: /home/dev/project"
        for call in m.get("tool_calls") or ():
            call["function"]["arguments"] = json.dumps(json.loads(call["function"]["arguments"]), separators=(",", ":"))
    clean = os.path.join(folder, "sent.json")
    with open(clean, "w", encoding="utf-8") as handle:
        json.dump({"model": "kimi-k2", "messages": messages}, handle)
    tools = [i for i, m in enumerate(messages) if m["role"] == "tool"]
    del messages[tools[len(tools) // 2]]
    lacking = os.path.join(folder, "sent-lacking.json")
    with open(lacking, "w", encoding="utf-8") as handle:
        json.dump({"model": "kimi-k2", "messages": messages}, handle)
    return clean, lacking


def _time(argv: list[str], rounds: int) -> tuple[float, str]:
    seconds = []
    out = ""
    for _ in range(rounds):
        buffer = io.StringIO()
        start = time.perf_counter()
        main(argv, out=buffer)
        seconds.append(time.perf_counter() - start)
        out = buffer.getvalue()
    return statistics.median(seconds), out


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5, 20], help="session sizes in MB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, median of {args.rounds} runs, each in this process")
    print()
    print("| session | lines | check | --request (sent) | ratio | --request (lacking one tool message) | ratio | findings |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for mb in args.sizes:
            log = os.path.join(folder, f"session-{mb}.jsonl")
            generate(log, int(mb * 1_000_000))
            with open(log, "rb") as handle:
                lines = sum(1 for _ in handle)
            clean, lacking = _requests(log, folder)
            plain, _ = _time(["check", log, "--brief"], args.rounds)
            sent, out_sent = _time(["check", log, "--request", clean, "--brief"], args.rounds)
            bad, out_bad = _time(["check", log, "--request", lacking, "--brief"], args.rounds)
            found = [line.split("(")[1].split(")")[0] for out in (out_sent, out_bad) for line in out.splitlines() if line.startswith("findings (")]
            print(f"| {mb:g} MB | {lines:,} | {plain:.2f} s | {sent:.2f} s | {sent / plain:.2f} × | {bad:.2f} s | {bad / plain:.2f} × | {' / '.join(found)} |")


if __name__ == "__main__":
    main_()
