"""``ctxcontract scan`` on 1,000 generated sessions: all cores against one, in one run.

Run from the repository root::

    PYTHONPATH=spec:reference python benchmarks/bench_scan.py                    # 1,000 sessions of ~40 KB
    PYTHONPATH=spec:reference python benchmarks/bench_scan.py --sessions 200     # quick

What it does:

1. Builds a fake home folder in a temporary directory holding every
   runtime's layout (``~/.kimi-code``, ``~/.kimi``, ``~/.codex``,
   ``~/.claude``), a quarter of the sessions each.  Each session is a
   Kimi Code ``wire.jsonl`` written by ``bench_formats.generate`` with its
   own seed (thinking, parallel calls, outputs of 0.2-6 KB, steers,
   cancels, crashes, late results, orphans), so most have hazards; the
   Codex and Claude Code sessions are that log through our exporters
   (``export_text``), the Kimi CLI ones its reference projection through
   ``export_kimi_context``.
2. Runs ``ctxcontract scan --json`` on it as a user would (a fresh
   process, ``HOME`` pointed at the fake home, the runtimes' variables
   unset), with ``--workers 1`` and with ``--workers`` = every core, in
   turns, ``--rounds`` times (default 3), and checks that both give the
   same verdict for every file.
3. Prints a markdown table: the median wall time of each (start-up and
   discovery included), files per second, the speed-up, and the CPU time of
   the scan's processes; and the load average around the runs, since on a
   shared machine other work takes cores away from the workers.

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_formats import generate  # noqa: E402

RUNTIMES = ("kimi-wire", "kimi-context", "codex", "claude")


def build_home(home: str, sessions: int, size: int) -> dict[str, int]:
    """``sessions`` generated sessions in every runtime's layout under ``home``; their bytes by runtime."""
    from ctxref.formats import export_text, load
    from ctxref.formats.messages import export_kimi_context
    from ctxref.projector import project

    scratch = os.path.join(home, "scratch.wire.jsonl")
    sizes = dict.fromkeys(RUNTIMES, 0)
    for i in range(sessions):
        kind = RUNTIMES[i % len(RUNTIMES)]
        generate(scratch, size, seed=1000 + i)
        if kind == "kimi-wire":
            path = os.path.join(home, ".kimi-code", "sessions", f"wd_proj{i % 7}_0123456789ab", f"s{i:04d}", "agents", "main", "wire.jsonl")
            with open(scratch, encoding="utf-8") as f:
                text = f.read()
        else:
            log = load(scratch, format="kimi-wire").log
            if kind == "kimi-context":
                path = os.path.join(home, ".kimi", "sessions", f"{i % 7:032x}", f"s{i:04d}", "context.jsonl")
                text = export_kimi_context(project(log))
            elif kind == "codex":
                path = os.path.join(home, ".codex", "sessions", "2026", "12", f"{1 + i % 28:02d}", f"rollout-2026-12-01T00-00-00-{i:04d}.jsonl")
                text = export_text(log, "codex")
            else:
                path = os.path.join(home, ".claude", "projects", f"-home-me-proj{i % 7}", f"{i:08d}-session.jsonl")
                text = export_text(log, "claude")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        sizes[kind] += len(text.encode("utf-8"))
    os.remove(scratch)
    return sizes


def scan(home: str, workers: int) -> tuple[float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k not in ("KIMI_CODE_HOME", "KIMI_SHARE_DIR", "CODEX_HOME", "CLAUDE_CONFIG_DIR")}
    env["HOME"] = home
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ctxcontract", "scan", "--json", "--workers", str(workers)], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr}")
    doc: dict[str, object] = json.loads(proc.stdout)
    return seconds, doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--size", type=int, default=40_000, help="bytes of each generated Kimi Code session (default 40,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the 'all cores' run (default: every core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as home:
        t = time.perf_counter()
        sizes = build_home(home, args.sessions, args.size)
        print(f"built {args.sessions:,} sessions ({sum(sizes.values()) / 1e6:.1f} MB) in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        load_before = os.getloadavg()[0]
        times: dict[int, list[float]] = {1: [], args.workers: []}
        cpu: dict[int, list[float]] = {1: [], args.workers: []}
        docs: dict[int, dict[str, object]] = {}
        for _ in range(args.rounds):
            for workers in times:
                before = os.times()
                seconds, docs[workers] = scan(home, workers)
                after = os.times()
                times[workers].append(seconds)
                cpu[workers].append(after.children_user + after.children_system - before.children_user - before.children_system)
        load_after = os.getloadavg()[0]
        one, many = docs[1], docs[args.workers]
        assert one["files"] == many["files"], "the worker processes disagree with one process"
        files = len(one["files"])  # type: ignore[arg-type]
        assert files == args.sessions, f"found {files} of {args.sessions} sessions"
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, {args.sessions:,} sessions of ~{args.size // 1000} KB, median of {args.rounds} runs")
    print(f"statuses: {one['counts']}; load average {load_before:.2f} before, {load_after:.2f} after (other people's work on the same cores)")
    print()
    print("| workers | wall time | files/s | speed-up | CPU time (all processes) |")
    print("| --- | --- | --- | --- | --- |")
    base = statistics.median(times[1])
    for workers, ts in times.items():
        m = statistics.median(ts)
        print(f"| {workers} | {m:.2f} s | {files / m:,.0f} | {base / m:.2f} × | {statistics.median(cpu[workers]):.2f} s |")


if __name__ == "__main__":
    main()
