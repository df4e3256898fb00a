"""Repairing a huge Kimi Code wire.jsonl beside checking it.

Run from the repository root::

    PYTHONPATH=spec:reference python benchmarks/bench_repair.py                  # 0.1, 0.5 and 1 GB
    PYTHONPATH=spec:reference python benchmarks/bench_repair.py --sizes 0.05     # quick
    PYTHONPATH=spec:reference python benchmarks/bench_repair.py --before f19dcac^  # and the whole-text repair of that commit

What it does:

1. Writes each file with ``bench_formats.generate`` (the same seeded Kimi
   Code ``wire.jsonl``: thinking, parallel calls, outputs of 0.2-6 KB,
   steers, cancels, crashes, late results, orphans, a compaction every 40
   turns), so there is something to repair all through the file.
2. In a fresh process each (so peak memory is that job's alone), times
   ``check_file`` (what ``ctxcontract check`` runs) and ``repair_stream``
   from the file to a file beside it (what ``ctxcontract repair`` runs).
   With ``--before REV``, also the ``repair.py`` of that git revision as the
   command line ran it then (read the whole text, ``repair_text``, write the text),
   on the smallest file only: it holds the file many times over.
3. Prints a markdown table: seconds and peak resident memory
   (``ru_maxrss``) of each job, and the ratios repair / check.

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_formats import generate  # noqa: E402

CHECK = """
import json, sys, time, resource
from ctxref.formats.verdict import check_file
t = time.perf_counter()
v = check_file(sys.argv[1], format="kimi-wire")
print(json.dumps({"seconds": time.perf_counter() - t, "events": v.events, "hazards": len(v.hazards),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

REPAIR = """
import json, sys, time, resource
from ctxref.formats.repair import repair_stream
t = time.perf_counter()
with open(sys.argv[1], "rb") as source, open(sys.argv[2], "wb") as sink:
    r = repair_stream(source, "kimi-wire", sink, path=sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "changes": len(r.changes), "remaining": len(r.remaining),
                  "lines_out": r.lines_out, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

#: The whole-text repair of an earlier revision, loaded from its source as ``ctxref.formats.repair_before``.
BEFORE = """
import importlib.util, json, sys, time, resource
import ctxref.formats
spec = importlib.util.spec_from_file_location("ctxref.formats.repair_before", sys.argv[3])
before = importlib.util.module_from_spec(spec); sys.modules[spec.name] = before; spec.loader.exec_module(before)
t = time.perf_counter()
with open(sys.argv[1], encoding="utf-8") as source:  # as the command line read it then
    r = before.repair_text(source.read(), "kimi-wire", path=sys.argv[1])
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(r.text)
print(json.dumps({"seconds": time.perf_counter() - t, "changes": len(r.changes), "remaining": len(r.remaining),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(script: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.5, 1.0], help="file sizes in GB (default 0.1 0.5 1)")
    parser.add_argument("--before", metavar="REV", help="also time the repair.py of this git revision, on the smallest file")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the files (they are deleted)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-repair-", dir=args.dir)
    before_src = ""
    if args.before:
        before_src = os.path.join(work, "repair_before.py")
        source = subprocess.run(["git", "show", f"{args.before}:reference/ctxref/formats/repair.py"], capture_output=True, text=True, check=True).stdout
        with open(before_src, "w", encoding="utf-8") as out:
            out.write(source)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus\n")
    print("| file | lines | events | hazards | changes | `check` | `repair` | repair / check | peak RSS check | peak RSS repair | repair / check |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for i, gb in enumerate(sorted(args.sizes)):
            path, out = os.path.join(work, "wire.jsonl"), os.path.join(work, "repaired.jsonl")
            t = time.perf_counter()
            generate(path, int(gb * 1e9))
            print(f"<!-- {gb} GB generated in {time.perf_counter() - t:.0f} s -->", file=sys.stderr, flush=True)
            size = os.path.getsize(path)
            check = run(CHECK, path)
            fixed = run(REPAIR, path, out)
            print(
                f"| {size / 1e9:.2f} GB | {fixed['lines_out']:,.0f} | {check['events']:,.0f} | {check['hazards']:,.0f} | {fixed['changes']:,.0f} "
                f"| {check['seconds']:.1f} s | {fixed['seconds']:.1f} s | {fixed['seconds'] / check['seconds']:.2f} × "
                f"| {check['rss_mb']:.0f} MB | {fixed['rss_mb']:.0f} MB | {fixed['rss_mb'] / check['rss_mb']:.2f} × |",
                flush=True,
            )
            if fixed["remaining"]:
                print(f"<!-- {fixed['remaining']:.0f} hazard(s) left after repair -->", file=sys.stderr)
            if before_src and i == 0:
                old_out = os.path.join(work, "repaired-before.jsonl")
                old = run(BEFORE, path, old_out, before_src)
                same = same_bytes(out, old_out)
                os.unlink(old_out)
                print(
                    f"| ↳ before ({args.before}, whole text) | | | | {old['changes']:,.0f} | | {old['seconds']:.1f} s | {old['seconds'] / check['seconds']:.2f} × "
                    f"| | {old['rss_mb']:.0f} MB | {old['rss_mb'] / check['rss_mb']:.2f} × |",
                    flush=True,
                )
                print(f"<!-- before and after write the same bytes: {same} -->", file=sys.stderr)
            os.unlink(path)
            os.unlink(out)
    finally:
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


if __name__ == "__main__":
    main()
