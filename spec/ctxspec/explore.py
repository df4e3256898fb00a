"""Explicit exploration of the abstract session, and concrete logs for abstract traces.

What this module owns: the breadth-first enumeration of abstract sessions
(traces from the initial state) up to a length, one per class modulo
renaming of slots, with counts and timings; the canonical form of a trace;
and :func:`concretize`, which turns an abstract trace into a canonical log of
``ctxspec.events`` that the session state machine accepts.

What it must not know: any rule (it asks ``abstract.successors``), Z3,
messages and projectors.

Renaming
--------
Slots start out identical and the transition treats them alike, so renaming
the slots of a trace gives another trace.  A trace is *canonical* when it is
the lexicographically least (by :meth:`AEvent.key`) of its renamings.  The
prefixes of a canonical trace are canonical, so the search extends canonical
traces only; and since a renaming that moves a canonical prefix makes it
strictly greater, ``trace + [e]`` is canonical iff no renaming that fixes the
prefix (its *stabilizer*, carried along) maps ``e`` to a smaller event.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .abstract import TABLES, AEvent, AState, Tables, Where, initial_state, rename, run, successors
from .events import (
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
)

Perm = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Session:
    """An abstract session: its events and the state they lead to."""

    trace: tuple[AEvent, ...]
    state: AState


@lru_cache(maxsize=1 << 16)
def _image(event: AEvent, perm: Perm) -> tuple[AEvent, tuple[int, ...]]:
    renamed = rename(event, perm)
    return renamed, renamed.key()


@lru_cache(maxsize=1 << 16)
def _key(event: AEvent) -> tuple[int, ...]:
    key: tuple[int, ...] = event.key()
    return key


def _extensions(
    trace: tuple[AEvent, ...], state: AState, stabilizer: tuple[Perm, ...], tables: Tables
) -> Iterator[tuple[tuple[AEvent, ...], AState, tuple[Perm, ...]]]:
    """Canonical one-event extensions; ``stabilizer``: the renamings fixing ``trace``, identity left out."""
    for event, nxt in successors(state, tables):
        key = _key(event)
        images = [(perm, _image(event, perm)) for perm in stabilizer]
        if all(image_key >= key for _, (_, image_key) in images):
            yield trace + (event,), nxt, tuple(perm for perm, (image, _) in images if image == event)


def _start(n: int, modulo_renaming: bool) -> tuple[tuple[AEvent, ...], AState, tuple[Perm, ...]]:
    perms = tuple(itertools.permutations(range(n)))[1:] if modulo_renaming else ()
    return (), initial_state(n), perms


def sessions(length: int, n: int, tables: Tables = TABLES, *, modulo_renaming: bool = True) -> Iterator[Session]:
    """Every abstract session of at most ``length`` events, breadth first (shortest first).

    With ``modulo_renaming``, one session per class of sessions equal up to a
    renaming of slots: the canonical one.
    """
    level = [_start(n, modulo_renaming)]
    for depth in range(length + 1):
        for trace, state, _ in level:
            yield Session(trace, state)
        if depth == length:
            return
        level = [ext for trace, state, stab in level for ext in _extensions(trace, state, stab, tables)]


@dataclass(frozen=True, slots=True)
class Census:
    """How many sessions there are of each length, and how long counting took."""

    slots: int
    counts: tuple[int, ...]  # counts[k]: sessions of exactly k events
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds else float("inf")

    def __str__(self) -> str:
        per = ", ".join(f"{k}:{c}" for k, c in enumerate(self.counts))
        return f"{self.total} sessions of <= {len(self.counts) - 1} events, {self.slots} slots ({per}); {self.seconds:.2f}s, {self.rate:,.0f}/s"


def census(length: int, n: int, tables: Tables = TABLES, *, modulo_renaming: bool = True) -> Census:
    """Count the sessions of :func:`sessions` level by level (the last level is counted, not kept)."""
    start = time.perf_counter()
    counts = [1]
    level = [_start(n, modulo_renaming)]
    for depth in range(length):
        if depth == length - 1:
            counts.append(sum(1 for t, s, p in level for _ in _extensions(t, s, p, tables)))
            break
        level = [ext for trace, state, stab in level for ext in _extensions(trace, state, stab, tables)]
        counts.append(len(level))
    return Census(n, tuple(counts), time.perf_counter() - start)


def canonical_trace(trace: Sequence[AEvent], n: int) -> tuple[AEvent, ...]:
    """The least renaming of ``trace`` (what :func:`sessions` yields for its class)."""
    images = (tuple(rename(e, perm) for e in trace) for perm in itertools.permutations(range(n)))
    return min(images, key=lambda t: [e.key() for e in t])


# ---------------------------------------------------------------------------
# Concretization.
# ---------------------------------------------------------------------------


@dataclass
class _Writer:
    """Turns abstract events into concrete ones, remembering ids and emission lines."""

    n: int
    ids: list[str | None]
    emitted: list[int]
    calls: int = 0
    prompts: int = 0

    def event(self, event: AEvent, before: AState, after: AState, line: int) -> Event:
        kind = event.kind
        if kind == TurnPrompt.type:
            self.prompts += 1
            return TurnPrompt(text=f"prompt {line}")
        if kind == TurnSteer.type:
            return TurnSteer(text=f"steer {line}")
        if kind == Notification.type:
            return Notification(text=f"notification {line}")
        if kind == Assistant.type:
            return self._assistant(event, line)
        if kind == ToolResult.type:
            target = self.ids[event.slots[0]] if event.slots else None
            return ToolResult(call_id=target or f"ghost_{line}", output=f"output {line}")
        if kind == Compaction.type:
            return Compaction(summary=f"summary {line}", upto=max((self.emitted[i] for i in event.slots), default=1))
        if kind == Undo.type:
            in_context = {i for i, s in enumerate(before.slots) if s.where is Where.CONTEXT}
            everything = not event.partial and set(event.slots) == in_context
            return Undo(count=self.prompts + 1 if everything else 1)
        simple: dict[str, Event] = {
            TurnCancel.type: TurnCancel(),
            TurnEnd.type: TurnEnd(),
            StepBegin.type: StepBegin(),
            StepError.type: StepError(message="stream cut"),
            StepEnd.type: StepEnd(finish_reason="stop"),
            Resume.type: Resume(),
            Clear.type: Clear(),
        }
        return simple[kind]

    def _assistant(self, event: AEvent, line: int) -> Assistant:
        calls = []
        for slot in event.slots:
            self.calls += 1
            self.ids[slot] = f"call_{self.calls}"
            calls.append(ToolCall(id=f"call_{self.calls}", name="Shell", args=f'{{"n": {self.calls}}}'))
        return Assistant(text="" if calls else f"reply {line}", calls=tuple(calls), complete=event.complete)

    def note_emissions(self, event: AEvent, before: AState, after: AState, line: int) -> None:
        """Remember the line at which each slot's call entered the context."""
        declared = set(event.slots) if event.kind == Assistant.type else set()
        for i, (b, a) in enumerate(zip(before.slots, after.slots)):
            if a.where is Where.CONTEXT and (b.where is not Where.CONTEXT or i in declared):
                self.emitted[i] = line


def concretize(trace: Sequence[AEvent], n: int, tables: Tables = TABLES) -> list[Event]:
    """A canonical log for an abstract trace: ``SessionMeta()`` then one event per abstract event.

    Each declared call gets a fresh id ``call_<k>``; a result for an unknown id
    names ``ghost_<line>``.  A compaction cuts at the latest emission line of
    the slots it covers (which covers every item emitted before, too: the
    ledger cuts prefixes); an undo that discards the whole context undoes
    every turn, any other undo one turn.
    """
    states = run(trace, n, tables)
    writer = _Writer(n, [None] * n, [1] * n)
    log: list[Event] = [SessionMeta()]
    for i, event in enumerate(trace):
        line = i + 2
        log.append(writer.event(event, states[i], states[i + 1], line))
        writer.note_emissions(event, states[i], states[i + 1], line)
    return log
