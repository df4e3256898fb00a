"""Checking a huge Kimi Code wire.jsonl in bounded memory.

Run from the repository root::

    PYTHONPATH=spec:reference python benchmarks/bench_formats.py                 # 0.1 GB and 1 GB
    PYTHONPATH=spec:reference python benchmarks/bench_formats.py --sizes 0.05    # quick
    mkdir -p out/before && git archive HEAD~1 spec reference | tar -x -C out/before   # against an earlier commit,
    PYTHONPATH=spec:reference python benchmarks/bench_formats.py --repeat 3 \
        --baseline out/before/spec:out/before/reference                         # best of 3, in turns

What it does:

1. Writes, from a seeded ``random.Random`` and without holding it in memory,
   a Kimi Code ``wire.jsonl`` (protocol 1.4) of each size: turns of a prompt
   (with its mirrored user message), steps with thinking and text parts,
   0-3 parallel tool calls with outputs of 0.2-6 KB, step ends, usage records,
   steers, cancelled turns, a crash now and then (a call never answered, its
   result arriving late), an orphan result now and then, and an automatic
   compaction every 40 turns, as Kimi Code does when the context fills up.
   Call ids are Kimi's ``Name:counter``, so every id is distinct.
2. In a fresh process each (so peak memory is that job's alone), times:
   the floor, reading the file and ``json.loads`` of every line; and
   ``ctxref.formats.verdict.check_file``, what ``ctxcontract check`` runs:
   import, reference projection, every hazard with its line.
   With ``--baseline PYTHONPATH``, also ``check_file`` of another version of
   the code (an earlier commit unpacked somewhere), in the same run.
3. Prints a markdown table: CPU seconds (user + system: on a shared machine
   wall time also measures the neighbours), MB/s, the ratio to the floor,
   and the peak resident memory of each process (``ru_maxrss``).  With
   ``--repeat N`` the jobs take turns N times and each one's fastest run is
   reported.

Nothing here asserts on a time: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from typing import IO

NAMES = ("Shell", "ReadFile", "Grep", "WriteFile", "TodoList")
WORDS = "the a parser test file module error line value function import return config build lexer token".split()


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


class Writer:
    def __init__(self, out: IO[str], seed: int) -> None:
        self.out = out
        self.rng = random.Random(seed)
        self.time = 1_767_312_000_000
        self.turn = 0
        self.step = 0
        self.calls = 0
        self.history = 0  # Kimi history messages since the last compaction
        self.late: list[str] = []

    def put(self, obj: dict[str, object]) -> None:
        self.time += self.rng.randint(1, 900)
        obj["time"] = self.time
        self.out.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def loop(self, event: dict[str, object]) -> None:
        self.put({"type": "context.append_loop_event", "event": event})

    def user(self, kind: str, words: int) -> None:
        parts = [{"type": "text", "text": text(self.rng, words)}]
        self.put({"type": kind, "input": parts, "origin": {"kind": "user"}})
        self.put({"type": "context.append_message", "message": {"role": "user", "content": parts, "toolCalls": [], "origin": {"kind": "user"}}})
        self.history += 1

    def result(self, cid: str, size: int) -> None:
        self.loop({"type": "tool.result", "parentUuid": cid, "toolCallId": cid, "result": {"output": text(self.rng, size)}})
        self.history += 1

    def turn_(self) -> None:
        rng = self.rng
        self.turn += 1
        self.user("turn.prompt", rng.randint(5, 60))
        for late in self.late:  # a result from before a crash, arriving late
            self.result(late, 40)
        self.late = []
        for _ in range(rng.randint(1, 4)):
            self.step += 1
            uuid = f"step-{self.step}"
            ids = {"turnId": str(self.turn), "step": self.step, "stepUuid": uuid}
            self.loop({"type": "step.begin", "uuid": uuid, "turnId": str(self.turn), "step": self.step})
            self.loop({"type": "content.part", "uuid": f"{uuid}-t", **ids, "part": {"type": "think", "think": text(rng, rng.randint(10, 80))}})
            self.loop({"type": "content.part", "uuid": f"{uuid}-p", **ids, "part": {"type": "text", "text": text(rng, rng.randint(5, 120))}})
            self.history += 1
            calls = []
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                self.calls += 1
                name = rng.choice(NAMES)
                cid = f"{name}:{self.calls}"
                calls.append(cid)
                self.loop({"type": "tool.call", "uuid": cid, **ids, "toolCallId": cid, "name": name, "args": {"path": text(rng, 3)}})
            fate = rng.random()
            if calls and fate < 0.01:  # the process died with calls running
                self.late = calls[-1:]
                for cid in calls[:-1]:
                    self.result(cid, rng.randint(30, 1000))
                return
            if calls and fate < 0.03:  # the user cancelled
                for cid in calls:
                    self.loop({"type": "tool.result", "parentUuid": cid, "toolCallId": cid, "result": {"output": f'Tool "{cid}" was aborted', "isError": True}})
                    self.history += 1
                self.put({"type": "turn.cancel", "turnId": self.turn})
                return
            if calls and fate < 0.10:
                self.user("turn.steer", rng.randint(3, 20))
            for cid in calls:
                self.result(cid, rng.randint(30, 1000))
            if fate > 0.995:
                self.result("Ghost:0", 10)  # an orphan
            self.loop({"type": "step.end", "uuid": uuid, "turnId": str(self.turn), "step": self.step, "finishReason": "tool_use" if calls else "end_turn"})
            self.put({"type": "usage.record", "model": "kimi-k2", "usage": {"inputOther": rng.randint(100, 90000), "output": rng.randint(10, 4000)}})
            if not calls:
                break
        if self.turn % 40 == 0 and not self.late:
            self.put({"type": "full_compaction.begin", "source": "auto"})
            self.put({"type": "context.apply_compaction", "summary": text(rng, 200), "compactedCount": self.history, "tokensBefore": 120000, "tokensAfter": 2000})
            self.put({"type": "full_compaction.complete"})
            self.history = 1


def generate(path: str, size: int, seed: int = 7) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "metadata", "protocol_version": "1.4", "created_at": 1_767_312_000_000}) + "\n")
        out.write(json.dumps({"type": "config.update", "systemPrompt": "You are Kimi Code, a coding agent."}) + "\n")
        w = Writer(out, seed)
        while out.tell() < size:
            w.turn_()


FLOOR = """
import json, sys, time, resource
u = resource.getrusage(resource.RUSAGE_SELF); cpu = u.ru_utime + u.ru_stime
t = time.perf_counter(); n = 0
with open(sys.argv[1], "rb") as f:
    for raw in f:
        json.loads(raw); n += 1
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": u.ru_utime + u.ru_stime - cpu, "lines": n, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHECK = """
import json, sys, time, resource
from ctxref.formats.verdict import check_file
u = resource.getrusage(resource.RUSAGE_SELF); cpu = u.ru_utime + u.ru_stime
t = time.perf_counter()
v = check_file(sys.argv[1])
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": u.ru_utime + u.ru_stime - cpu, "events": v.events, "hazards": len(v.hazards), "messages": len(v.messages),
                  "format": v.format, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(script: str, path: str, pythonpath: str | None = None) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else None
    proc = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def measure(path: str, baseline: str | None, repeat: int) -> dict[str, dict[str, float]]:
    """Each job's fastest run by CPU time, the jobs taking turns (a busy spell slows all alike)."""
    jobs = {"floor": (FLOOR, None), "check": (CHECK, None)} | ({"baseline": (CHECK, baseline)} if baseline else {})
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for name, (script, pythonpath) in jobs.items():
            got = run(script, path, pythonpath)
            if name not in best or got["cpu"] < best[name]["cpu"]:
                best[name] = got
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 1.0], help="file sizes in GB (default 0.1 1)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the files (they are deleted)")
    parser.add_argument("--repeat", type=int, default=1, help="run the jobs this many times, in turn; report each one's fastest (default 1)")
    parser.add_argument("--baseline", metavar="PYTHONPATH", help="also time check_file of the code on this PYTHONPATH (an earlier version)")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus; seconds are CPU seconds (user + system)\n")
    columns = "| baseline check | baseline / floor | peak RSS baseline " if args.baseline else ""
    print(f"| file | lines | events | hazards | floor: parse JSON {columns}| check | check / floor | peak RSS floor | peak RSS check |")
    print("|---|---|---|---|---" + ("|---|---|---" if args.baseline else "") + "|---|---|---|---|")
    for gb in args.sizes:
        size = int(gb * 1e9)
        fd, path = tempfile.mkstemp(suffix=".wire.jsonl", dir=args.dir)
        os.close(fd)
        try:
            t = time.perf_counter()
            generate(path, size)
            made = time.perf_counter() - t
            actual = os.path.getsize(path)
            jobs = measure(path, args.baseline, args.repeat)
            floor, check = jobs["floor"], jobs["check"]
            mb = actual / 1e6
            before = ""
            if args.baseline:
                base = jobs["baseline"]
                assert (base["events"], base["hazards"], base["messages"]) == (check["events"], check["hazards"], check["messages"])
                before = f"| {base['cpu']:.1f} s ({mb / base['cpu']:.0f} MB/s) | {base['cpu'] / floor['cpu']:.2f} x | {base['rss_mb']:.0f} MB "
            print(
                f"| {actual / 1e9:.2f} GB | {floor['lines']:,.0f} | {check['events']:,.0f} | {check['hazards']:,.0f} "
                f"| {floor['cpu']:.1f} s ({mb / floor['cpu']:.0f} MB/s) {before}| {check['cpu']:.1f} s ({mb / check['cpu']:.0f} MB/s) "
                f"| {check['cpu'] / floor['cpu']:.2f} x | {floor['rss_mb']:.0f} MB | {check['rss_mb']:.0f} MB |",
                flush=True,
            )
            print(f"<!-- generated in {made:.0f} s; wall s floor {floor['seconds']:.1f}, check {check['seconds']:.1f} -->", file=sys.stderr)
        finally:
            os.unlink(path)


if __name__ == "__main__":
    main()
