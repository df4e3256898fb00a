"""Benchmark of the reference projector on a long, realistic session log.

Run from the repository root::

    PYTHONPATH=spec:reference python benchmarks/bench_projector.py            # 1,000,000 events
    PYTHONPATH=spec:reference python benchmarks/bench_projector.py --quick    # 50,000 events
    PYTHONPATH=spec:reference python benchmarks/bench_projector.py --events 200000 --validate

What it does:

1. Generates, from a seeded ``random.Random``, a session log of ``--events``
   events that ``ctxspec.state.validate_log`` accepts: turns of prompts and
   steps (``step.begin``, a reply with 0-3 parallel calls, results in random
   order, ``step.end``), steers while tools run, retried step errors, late,
   duplicate, missing and unknown-id results, cut streams, crashes mid-tool
   (``resume``), cancelled turns, undo and, every few thousand events, a
   compaction whose ``upto`` is a recent line, so the context stays bounded as
   a real runtime's does.
2. Times (``time.perf_counter``; best of a few repeats where a repeat is
   cheap): parsing the JSON Lines text (``parse_log``, the floor), the batch
   ``project(log)``, ``Projector.feed`` over a window of events after a short
   and after a long history (the per-event cost must not grow with the
   session's length), and ``Projector.messages()`` at those two projection
   points.
3. Prints a markdown table and the machine it ran on.

The garbage collector stays enabled (a runtime runs with it); a full
collection is forced before each timed region so that one does not land in a
short window by chance.  Nothing here asserts on a time: it is a benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ctxref.projector import Projector, project
from ctxspec.events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    Resume,
    SessionMeta,
    StepBegin,
    StepEnd,
    StepError,
    ToolCall,
    ToolResult,
    TurnCancel,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
    Undo,
    dumps_log,
    parse_log,
)
from ctxspec.state import validate_log

T = TypeVar("T")

DEFAULT_EVENTS = 1_000_000
QUICK_EVENTS = 50_000
VALIDATE_UP_TO = 200_000  # logs this short are always checked against the state machine
EARLY_HISTORY = 1_000

TOOLS = ("Shell", "ReadFile", "WriteFile", "StrReplaceFile", "Grep", "Glob", "TodoList", "WebFetch")
WORDS = (
    "the test fails because the fixture opens the file twice and the second handle is never closed "
    "so refactor the parser keep the public names add a regression test and update the changelog "
    "module function class import error traceback line column config cache request response retry"
).split()

# ---------------------------------------------------------------------------
# The session generator.
# ---------------------------------------------------------------------------


def _text(rng: random.Random, lo: int, hi: int) -> str:
    """Words until the text is between ``lo`` and ``hi`` characters long."""
    target = rng.randint(lo, hi)
    out: list[str] = []
    size = 0
    while size < target:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


@dataclass
class Rates:
    """Probabilities of the things a session does (per opportunity)."""

    idle_notification: float = 0.03
    idle_resume: float = 0.003
    undo: float = 0.004
    clear: float = 0.0002
    steer_in_step: float = 0.05
    steer_in_tools: float = 0.03
    notification_in_turn: float = 0.004
    step_error: float = 0.015
    cut_stream: float = 0.01
    crash_mid_tools: float = 0.006
    cancel_mid_tools: float = 0.01
    missing_result: float = 0.01
    duplicate_result: float = 0.004
    unknown_result: float = 0.002
    straggler_arrives: float = 0.05
    straggler_kept: float = 0.6  # an abandoned call's result still arrives, late
    reused_id: float = 0.002  # the model reuses a recent call id
    compaction_every: tuple[int, int] = (2_000, 6_000)  # events between compactions
    compaction_keeps: tuple[int, int] = (20, 400)  # lines after ``upto``


class SessionGenerator:
    """Builds a log event by event, following the runtime's phases by construction."""

    def __init__(self, seed: int, *, id_scheme: str = "unique", rates: Rates | None = None) -> None:
        self.rng = random.Random(seed)
        self.rates = rates or Rates()
        self.id_scheme = id_scheme
        rng = self.rng
        # Pools of texts, so that a million events do not hold a million distinct strings.
        self.prompts = [_text(rng, 15, 400) for _ in range(300)]
        self.steers = [_text(rng, 5, 120) for _ in range(100)]
        self.notes = ["background task finished: " + _text(rng, 10, 80) for _ in range(50)]
        self.replies = [_text(rng, 20, 1_200) for _ in range(300)]
        self.thoughts = [_text(rng, 10, 200) for _ in range(100)]
        self.outputs = [_text(rng, 0, 120) for _ in range(300)] + [_text(rng, 200, 4_000) for _ in range(200)]
        self.summaries = [_text(rng, 300, 3_000) for _ in range(40)]
        self.log: list[Event] = []
        self.counter = 0
        self.recent_ids: deque[str] = deque(maxlen=32)
        self.stragglers: list[str] = []  # abandoned calls whose results will still arrive
        self.next_compaction = rng.randint(*self.rates.compaction_every)

    # -- helpers -------------------------------------------------------------

    def emit(self, event: Event) -> None:
        self.log.append(event)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def new_id(self, name: str) -> str:
        if self.recent_ids and self.chance(self.rates.reused_id):
            return self.rng.choice(self.recent_ids)
        self.counter += 1
        return f"{name}:{self.counter}"

    def result(self, call_id: str) -> ToolResult:
        return ToolResult(call_id=call_id, output=self.rng.choice(self.outputs), is_error=self.chance(0.05))

    def crash(self) -> None:
        self.emit(Resume())
        if self.id_scheme == "per-process":  # the new process numbers its calls from 1 again
            self.counter = 0

    def gap(self, *, in_turn: bool) -> None:
        """Things that may happen between two events: a straggler, a steer, a notification."""
        r = self.rates
        if self.stragglers and self.chance(r.straggler_arrives):
            self.emit(self.result(self.stragglers.pop(self.rng.randrange(len(self.stragglers)))))
        if in_turn and self.chance(r.steer_in_tools):
            self.emit(TurnSteer(text=self.rng.choice(self.steers)))
        if self.chance(r.notification_in_turn):
            self.emit(Notification(text=self.rng.choice(self.notes)))

    def maybe_compact(self) -> None:
        line = len(self.log)  # the last line written
        if line < self.next_compaction:
            return
        keep = self.rng.randint(*self.rates.compaction_keeps)
        self.emit(Compaction(summary=self.rng.choice(self.summaries), upto=max(1, line - keep)))
        self.next_compaction = line + self.rng.randint(*self.rates.compaction_every)

    # -- phases --------------------------------------------------------------

    def idle(self) -> None:
        r, rng = self.rates, self.rng
        self.gap(in_turn=False)
        if self.chance(r.idle_notification):
            self.emit(Notification(text=rng.choice(self.notes)))
        if self.chance(r.idle_resume):
            self.crash()
        if self.chance(r.undo):
            self.emit(Undo(count=rng.choice((1, 1, 1, 2))))
        if self.chance(r.clear):
            self.emit(Clear())
        self.maybe_compact()

    def turn(self) -> None:
        r, rng = self.rates, self.rng
        self.emit(TurnPrompt(text=rng.choice(self.prompts)))
        max_steps = rng.choice((1, 2, 3, 4, 6, 8, 12, 20))
        steps = 0
        while True:
            self.maybe_compact()
            self.emit(StepBegin())
            if self.chance(r.steer_in_step):
                self.emit(TurnSteer(text=rng.choice(self.steers)))
            if self.chance(r.step_error):
                self.emit(StepError(message="429 rate limited", retryable=True))
                continue
            n_calls = 0 if steps + 1 >= max_steps else rng.choices((0, 1, 2, 3), (8, 60, 22, 10))[0]
            names = [rng.choice(TOOLS) for _ in range(n_calls)]
            calls = tuple(
                ToolCall(id=self.new_id(name), name=name, args=f'{{"path":"src/pkg/mod_{rng.randrange(500)}.py"}}')
                for name in names
            )
            text = rng.choice(self.replies) if not calls else (rng.choice(self.thoughts) if self.chance(0.4) else "")
            if self.chance(r.cut_stream):  # the stream was cut: the calls never run
                self.emit(Assistant(text=text, calls=calls, complete=False))
                self.emit(StepError(message="stream cut", retryable=True))
                continue
            self.emit(Assistant(text=text, calls=calls))
            self.emit(StepEnd(finish_reason="tool_calls" if calls else "stop"))
            self.recent_ids.extend(c.id for c in calls)
            if not calls:
                self.emit(TurnEnd())
                return
            if not self.tools(calls):
                return  # the turn was cancelled or the runtime crashed
            steps += 1

    def tools(self, calls: Sequence[ToolCall]) -> bool:
        """Results in random order; False when the turn ended (cancel or crash)."""
        r, rng = self.rates, self.rng
        order = list(calls)
        rng.shuffle(order)
        fault = rng.random()
        stop_after = rng.randrange(len(order)) if fault < r.crash_mid_tools + r.cancel_mid_tools else len(order)
        for i, call in enumerate(order):
            if i == stop_after:
                if fault < r.crash_mid_tools:
                    self.crash()  # a crash: the tools died with the process
                else:
                    self.emit(TurnCancel())  # the tools keep running; their results come late
                    self.stragglers.extend(c.id for c in order[i:] if self.chance(r.straggler_kept))
                return False
            self.gap(in_turn=True)
            if self.chance(r.missing_result):  # closed as never answered at the next step.begin
                if self.chance(r.straggler_kept):
                    self.stragglers.append(call.id)
                continue
            self.emit(self.result(call.id))
            if self.chance(r.duplicate_result):
                self.emit(self.result(call.id))
            if self.chance(r.unknown_result):
                self.emit(self.result(f"ghost:{rng.randrange(10**9)}"))
        return True

    def run(self, n: int) -> list[Event]:
        self.emit(SessionMeta(system="You are a coding agent. " + _text(self.rng, 2_000, 2_000)))
        while len(self.log) < n:
            self.idle()
            self.turn()
        del self.log[n:]  # any prefix of a valid log is valid
        return self.log


def generate_log(n: int, seed: int, *, id_scheme: str = "unique") -> list[Event]:
    return SessionGenerator(seed, id_scheme=id_scheme).run(n)


# ---------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------


def best_of(fn: Callable[[], T], repeats: int, budget: float) -> tuple[float, T, int]:
    """The best time of up to ``repeats`` runs; stops early once ``budget`` seconds are spent."""
    best = float("inf")
    spent = 0.0
    result: T | None = None
    runs = 0
    for _ in range(max(1, repeats)):
        result = None  # free the previous result before the next run
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        runs += 1
        if spent >= budget:
            break
    assert result is not None
    return best, result, runs


@dataclass
class WindowResult:
    history: int
    window: int
    feed_seconds: float  # best over repeats
    feed_runs: int
    messages_seconds: float  # one messages() call, best over repeats
    messages_count: int


def projection_point_at_or_after(log: Sequence[Event], h: int) -> int:
    """The smallest history ``>= h`` whose last event is a ``step.begin``."""
    for i in range(max(h, 1), len(log)):
        if isinstance(log[i - 1], StepBegin):
            return i
    return h


def projection_point_at_or_before(log: Sequence[Event], h: int) -> int:
    """The largest history ``<= h`` whose last event is a ``step.begin``."""
    for i in range(min(h, len(log)), 0, -1):
        if isinstance(log[i - 1], StepBegin):
            return i
    return h


def time_window(log: Sequence[Event], history: int, window: int, repeats: int) -> WindowResult:
    """Feed ``history`` events (untimed), then time ``messages()`` and the next ``window`` feeds."""
    best_feed = best_msg = float("inf")
    count = 0
    chunk = log[history : history + window]
    for _ in range(max(1, repeats)):
        p = Projector()
        feed = p.feed
        for event in log[:history]:
            feed(event)
        gc.collect()
        # (d) messages() at this projection point: a cheap call, so the best of many.
        for _ in range(20):
            t0 = time.perf_counter()
            msgs = p.messages()
            best_msg = min(best_msg, time.perf_counter() - t0)
        count = len(msgs)
        del msgs
        gc.collect()
        # (c) the feed window.
        t0 = time.perf_counter()
        for event in chunk:
            feed(event)
        best_feed = min(best_feed, time.perf_counter() - t0)
        del p, feed
    return WindowResult(history, len(chunk), best_feed, max(1, repeats), best_msg, count)


# ---------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _s(x: float) -> str:
    return f"{x:.3f}" if x >= 0.01 else f"{x:.6f}"


def row(what: str, events: int, seconds: float, ratio: str) -> str:
    per = seconds / events if events else 0.0
    return f"| {what} | {_n(events)} | {_s(seconds)} | {_n(events / seconds) if seconds else '-'} | {_n(per * 1e9)} | {ratio} |"


def peak_memory() -> str:
    if sys.platform == "win32":
        return ""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    mib = peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    return f", peak RSS {mib:,.0f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=None, help=f"log length (default {DEFAULT_EVENTS:,}; {QUICK_EVENTS:,} with --quick)")
    ap.add_argument("--quick", action="store_true", help="a short run: a smaller log and fewer repeats")
    ap.add_argument("--window", type=int, default=10_000, help="events in each timed feed window (default 10,000)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats of each measurement, best kept (default 3; 2 with --quick)")
    ap.add_argument("--budget", type=float, default=15.0, help="stop repeating a whole-log measurement once it has taken this many seconds")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument(
        "--id-scheme",
        choices=("unique", "per-process"),
        default="unique",
        help="call ids: a session-wide counter (default), or one that restarts at every resume, so ids recur",
    )
    ap.add_argument("--validate", action="store_true", help=f"check the log with validate_log at any size (always done up to {VALIDATE_UP_TO:,} events)")
    args = ap.parse_args(argv)
    n: int = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    repeats: int = args.repeats if args.repeats is not None else (2 if args.quick else 3)
    window: int = args.window
    smallest = EARLY_HISTORY + 2 * 100 + 100
    if n < smallest:
        ap.error(f"--events must be at least {smallest:,}")
    if n < EARLY_HISTORY + 2 * window + 100:
        window = (n - EARLY_HISTORY - 100) // 2

    started = time.perf_counter()
    print(f"# bench_projector: {n:,} events, seed {args.seed}, call ids {args.id_scheme}", flush=True)

    t0 = time.perf_counter()
    log = generate_log(n, args.seed, id_scheme=args.id_scheme)
    gen_s = time.perf_counter() - t0
    kinds = Counter(e.type for e in log)
    print(f"generated in {gen_s:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()), flush=True)
    if args.validate or n <= VALIDATE_UP_TO:
        t0 = time.perf_counter()
        final = validate_log(log)
        print(f"validate_log: ok ({time.perf_counter() - t0:.1f} s, final phase {final.value})", flush=True)

    text = dumps_log(log)
    print(f"JSONL: {len(text.encode()) / 1e6:,.1f} MB", flush=True)

    # (a) parsing, the floor; and plain json.loads, the floor's floor.
    lines = text.splitlines()
    json_s, _, json_runs = best_of(lambda: [json.loads(x) for x in lines], repeats, args.budget)
    del lines
    parse_s, parsed, parse_runs = best_of(lambda: parse_log(text), repeats, args.budget)
    if list(parsed) != log:
        raise SystemExit("parse_log(dumps_log(log)) != log")
    del parsed, text
    print(f"parse_log: {parse_s:.2f} s (best of {parse_runs})", flush=True)

    # (b) batch projection.
    project_s, final_messages, project_runs = best_of(lambda: project(log), repeats, args.budget)
    print(f"project: {project_s:.2f} s (best of {project_runs}), {len(final_messages):,} messages at the end", flush=True)
    del final_messages

    # (c) + (d): a window after a short and after a long history, both starting at a step.begin.
    early_h = projection_point_at_or_after(log, EARLY_HISTORY)
    late_h = projection_point_at_or_before(log, n - window)
    early = time_window(log, early_h, window, max(repeats, 5))
    print(f"early window: {early.feed_seconds * 1e9 / early.window:,.0f} ns/event", flush=True)
    late = time_window(log, late_h, window, repeats)
    print(f"late window: {late.feed_seconds * 1e9 / late.window:,.0f} ns/event", flush=True)
    early_ns = early.feed_seconds / early.window
    late_ns = late.feed_seconds / late.window

    print()
    print("| measurement | events | seconds | events/s | ns/event | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row(f"`json.loads` per line (best of {json_runs})", n, json_s, f"{json_s / parse_s:.2f} × parse"))
    print(row(f"`parse_log`: JSONL → events, the floor (best of {parse_runs})", n, parse_s, "1.00 × parse"))
    print(row(f"`project(log)`, batch (best of {project_runs})", n, project_s, f"{project_s / parse_s:.2f} × parse"))
    print(row(f"`Projector.feed` after {early.history:,} events (best of {early.feed_runs})", early.window, early.feed_seconds, "1.00 × early"))
    print(row(f"`Projector.feed` after {late.history:,} events (best of {late.feed_runs})", late.window, late.feed_seconds, f"**{late_ns / early_ns:.2f} × early**"))
    for w, name in ((early, "early"), (late, "late")):
        per_msg = w.messages_seconds / w.messages_count * 1e9 if w.messages_count else 0.0
        ratio = "1.00 × early" if w is early else f"{late.messages_seconds / early.messages_seconds:.2f} × early"
        print(
            f"| `messages()` after {w.history:,} events ({name}; {w.messages_count:,} messages) | 1 call | "
            f"{_s(w.messages_seconds)} | - | {per_msg:,.0f} per message | {ratio} |"
        )
    print()
    print("Feed windows start at a step.begin, right after a full `gc.collect()`; the whole-log rows include")
    print("the collector's full passes over the live heap (the benchmark's own copy of the log included).")
    print()
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}, "
          f"{platform.machine()}, os.cpu_count() = {os.cpu_count()}")
    print(
        f"log: seed {args.seed}, call ids {args.id_scheme}, generated in {gen_s:.1f} s; "
        f"whole run {time.perf_counter() - started:.1f} s{peak_memory()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
