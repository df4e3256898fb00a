"""Start-up of the command line against a bare interpreter, measured in one run.

Run from the repository root, with the project installed (``.venv``)::

    .venv/bin/python benchmarks/bench_startup.py            # 20 runs each
    .venv/bin/python benchmarks/bench_startup.py --runs 5   # quick

Each command runs as a fresh process with its bytecode compiled (as pip
leaves an installed wheel; an uncounted first round writes it), in turns (one run of each, then the
next round), so a slow moment of a shared machine lands on all of them
alike.  It prints the median wall time of each and its ratio to
``python -c pass`` on the same interpreter; the goal for the file commands
(``check``, ``repair``, ``project``, ``rules``) is at most 2 x.  For scale it
also times importing Hypothesis and Z3, which those commands no longer do.

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def commands(out_dir: str) -> dict[str, list[str]]:
    py = sys.executable
    wire = os.path.join(EXAMPLES, "kimi-wire", "todolist3.jsonl")
    return {
        "python -c pass (the floor)": [py, "-c", "pass"],
        "ctxcontract rules": [py, "-m", "ctxcontract", "rules"],
        "ctxcontract check (Kimi wire example)": [py, "-m", "ctxcontract", "check", wire],
        "ctxcontract check --json": [py, "-m", "ctxcontract", "check", wire, "--json"],
        "ctxcontract project": [py, "-m", "ctxcontract", "project", wire],
        "ctxcontract repair -o FILE": [py, "-m", "ctxcontract", "repair", wire, "-o", os.path.join(out_dir, "r.jsonl"), "--force"],
        "ctxcontract --help": [py, "-m", "ctxcontract", "--help"],
        "for scale: import hypothesis, z3": [py, "-c", "import hypothesis, z3"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    # Bytecode as users have it: pip compiles it at install time.  A round
    # that is not counted writes it for an editable install.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as out_dir:
        jobs = commands(out_dir)
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for round in range(args.runs + 1):
            for name, argv in jobs.items():
                start = time.perf_counter()
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
                if round:
                    times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["python -c pass (the floor)"])
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, median of {args.runs} runs each, in turns\n")
    print("| command | median | / floor |")
    print("| --- | --- | --- |")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"| {name} | {median * 1000:.0f} ms | {median / floor:.2f} x |")


if __name__ == "__main__":
    main()
