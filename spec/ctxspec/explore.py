"""Explicit exploration of the abstract session, and concrete logs for abstract traces.

What this module owns: the breadth-first enumeration of abstract sessions
(traces from the initial state) up to a length, one per class modulo
renaming of slots, with counts and timings; the canonical form of a trace;
and :func:`concretize`, which turns an abstract trace into a canonical log of
``ctxspec.events`` that the session state machine accepts; and
:func:`concretizations`, every log an abstract trace can stand for (reused
ids, compaction cuts anywhere, any undo count), kept only while the ledger
(``ledger.py``) follows the abstract trace.

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

import copy
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from .abstract import TABLES, AEvent, AState, Tables, Where, initial_state, rename, run, successors
from .ledger import Call, Ledger, ledger_of
from .state import CallStatus
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


@lru_cache(maxsize=1 << 16)
def canonical_successors(
    state: AState, stabilizer: tuple[Perm, ...], tables: Tables
) -> tuple[tuple[AEvent, AState, tuple[Perm, ...]], ...]:
    """The events that extend a canonical trace in ``state`` canonically, the state after each
    and the renamings that fix the longer trace; ``stabilizer``: those that fix the trace
    (identity left out).  Cached: a few thousand (state, stabilizer) pairs make up the tree."""
    out = []
    for event, nxt in successors(state, tables):
        key = _key(event)
        images = [(perm, _image(event, perm)) for perm in stabilizer]
        if all(image_key >= key for _, (_, image_key) in images):
            out.append((event, nxt, tuple(perm for perm, (image, _) in images if image == event)))
    return tuple(out)


def _extensions(
    trace: tuple[AEvent, ...], state: AState, stabilizer: tuple[Perm, ...], tables: Tables
) -> Iterator[tuple[tuple[AEvent, ...], AState, tuple[Perm, ...]]]:
    """Canonical one-event extensions; ``stabilizer``: the renamings fixing ``trace``, identity left out."""
    for event, nxt, fixing in canonical_successors(state, stabilizer, tables):
        yield trace + (event,), nxt, fixing


def origin(n: int, modulo_renaming: bool = True) -> tuple[tuple[AEvent, ...], AState, tuple[Perm, ...]]:
    """The empty trace, the initial state, and the renamings that fix it (all but identity)."""
    perms = tuple(itertools.permutations(range(n)))[1:] if modulo_renaming else ()
    return (), initial_state(n), perms


def sessions(length: int, n: int, tables: Tables = TABLES, *, modulo_renaming: bool = True) -> Iterator[Session]:
    """Every abstract session of at most ``length`` events, breadth first (shortest first).

    With ``modulo_renaming``, one session per class of sessions equal up to a
    renaming of slots: the canonical one.
    """
    level = [origin(n, modulo_renaming)]
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
    level = [origin(n, modulo_renaming)]
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


#: The events that carry nothing of the trace (events are immutable: one of each serves every log).
_SIMPLE: Final[dict[str, Event]] = {
    TurnCancel.type: TurnCancel(),
    TurnEnd.type: TurnEnd(),
    StepBegin.type: StepBegin(),
    StepError.type: StepError(message="stream cut"),
    StepEnd.type: StepEnd(finish_reason="stop"),
    Resume.type: Resume(),
    Clear.type: Clear(),
}


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
        return _SIMPLE[kind]

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


# ---------------------------------------------------------------------------
# Concretization variants: every log an abstract trace can stand for.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variants:
    """Which concrete choices :func:`concretizations` enumerates beyond :func:`concretize`'s.

    * ``reuse_ids`` -- each declared call gets a fresh id, or reuses an id
      already used in the log (or earlier in the same message);
    * ``cuts`` -- a compaction's ``upto`` is any earlier line, not only the
      emission line of the covered slots (a cut may fall inside an exchange);
    * ``undo_counts`` -- an undo removes any number of turns, 1 to all;
    * ``faithful`` -- keep only the logs whose ledger follows the abstract trace
      (per slot: the same call status and place; the same open exchange and
      queue), so that every log is an instance of its abstract session.
    """

    reuse_ids: bool = True
    cuts: bool = True
    undo_counts: bool = True
    faithful: bool = True


#: Only :func:`concretize`'s canonical choices (still checked for faithfulness).
CANONICAL: Final = Variants(reuse_ids=False, cuts=False, undo_counts=False, faithful=True)
#: Every choice.
ALL_VARIANTS: Final = Variants()


def ledger_where(ledger: Ledger, call: Call) -> Where:
    """Where the ledger holds ``call``, in the abstraction's terms."""
    if ledger.pending is not None and any(c is call for c in ledger.pending.calls):
        return Where.EXCHANGE
    if any(c is call for item in ledger.items for c in item.calls):
        return Where.CONTEXT
    if call.status is CallStatus.DROPPED:
        return Where.NOWHERE
    return Where.OUT


def follows(ledger: Ledger, state: AState, slot_calls: Sequence[int | None]) -> bool:
    """Whether ``ledger`` is in ``state``: ``slot_calls[i]`` indexes ``ledger.all_calls`` (the call of slot ``i``)."""
    if (ledger.pending is not None) != state.exchange_open or bool(ledger.queued) != state.queued:
        return False
    for slot, index in zip(state.slots, slot_calls):
        if index is None:
            if slot.status is not CallStatus.FREE:
                return False
            continue
        call = ledger.all_calls[index]
        if call.status is not slot.status or ledger_where(ledger, call) is not slot.where:
            return False
    return True


@dataclass(frozen=True, slots=True)
class _Node:
    """A concretized prefix and what the writer remembers about it (immutable, so it can branch)."""

    log: tuple[Event, ...]
    slot_ids: tuple[str | None, ...]  # the id of each slot's call
    slot_calls: tuple[int | None, ...]  # index of each slot's call in the ledger's all_calls
    ids: tuple[str, ...]  # distinct ids used so far, in first-use order
    calls: int  # calls declared so far
    prompts: int
    emitted: tuple[int, ...]  # line at which each slot's call entered the context


def _assistant_choices(node: _Node, event: AEvent, line: int, reuse: bool) -> Iterator[tuple[Assistant, tuple[str, ...]]]:
    """Each way to name the calls of an ``assistant`` event: fresh ids first."""

    def name(k: int, used: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if k == len(event.slots):
            yield ()
            return
        fresh = f"call_{node.calls + k + 1}"
        options = [fresh] + (list(used) if reuse else [])
        for chosen in options:
            seen = used if chosen in used else used + (chosen,)
            for rest in name(k + 1, seen):
                yield (chosen, *rest)

    for names in name(0, node.ids):
        calls = tuple(
            ToolCall(id=call_id, name="Shell", args=f'{{"n": {node.calls + k + 1}}}') for k, call_id in enumerate(names)
        )
        yield Assistant(text="" if calls else f"reply {line}", calls=calls, complete=event.complete), names


def _emitted_after(node: _Node, event: AEvent, before: AState, after: AState, line: int) -> tuple[int, ...]:
    declared = set(event.slots) if event.kind == Assistant.type else set()
    return tuple(
        line if a.where is Where.CONTEXT and (b.where is not Where.CONTEXT or i in declared) else old
        for i, (b, a, old) in enumerate(zip(before.slots, after.slots, node.emitted))
    )


def _children(node: _Node, event: AEvent, before: AState, after: AState, v: Variants) -> Iterator[_Node]:
    line = len(node.log) + 1
    emitted = _emitted_after(node, event, before, after, line)
    if event.kind == Assistant.type:
        for reply, names in _assistant_choices(node, event, line, v.reuse_ids):
            slot_ids, slot_calls = list(node.slot_ids), list(node.slot_calls)
            first = sum(1 for e in node.log if isinstance(e, Assistant) for _ in e.calls)
            for k, slot in enumerate(event.slots):
                slot_ids[slot], slot_calls[slot] = names[k], first + k
            ids = node.ids + tuple(dict.fromkeys(x for x in names if x not in node.ids))
            yield _Node(
                node.log + (reply,), tuple(slot_ids), tuple(slot_calls), ids, node.calls + len(names), node.prompts, emitted
            )
        return
    options: list[Event]
    prompts = node.prompts
    if event.kind == TurnPrompt.type:
        prompts += 1
        options = [TurnPrompt(text=f"prompt {line}")]
    elif event.kind == ToolResult.type:
        target = node.slot_ids[event.slots[0]] if event.slots else None
        options = [ToolResult(call_id=target or f"ghost_{line}", output=f"output {line}")]
    elif event.kind == Compaction.type:
        canonical = max((node.emitted[i] for i in event.slots), default=1)
        cuts = [canonical] + ([u for u in range(1, line) if u != canonical] if v.cuts else [])
        options = [Compaction(summary=f"summary {line}", upto=u) for u in cuts]
    elif event.kind == Undo.type:
        in_context = {i for i, s in enumerate(before.slots) if s.where is Where.CONTEXT}
        everything = not event.partial and set(event.slots) == in_context
        canonical = node.prompts + 1 if everything else 1
        counts = [canonical] + ([c for c in range(1, node.prompts + 2) if c != canonical] if v.undo_counts else [])
        options = [Undo(count=c) for c in counts]
    else:
        writer = _Writer(len(node.slot_ids), list(node.slot_ids), list(node.emitted), node.calls, node.prompts)
        options = [writer.event(event, before, after, line)]
    for concrete in options:
        yield _Node(node.log + (concrete,), node.slot_ids, node.slot_calls, node.ids, node.calls, prompts, emitted)


def concretizations(
    trace: Sequence[AEvent], n: int, tables: Tables = TABLES, variants: Variants = ALL_VARIANTS
) -> Iterator[list[Event]]:
    """Every canonical log for ``trace`` under ``variants``, :func:`concretize`'s choices first.

    Texts, names and arguments are :func:`concretize`'s (they are unique per
    line or call); what varies is the ids, the compaction cuts and the undo
    counts.  With ``variants.faithful`` a branch is pruned as soon as the
    ledger leaves the abstract trace (:func:`follows`); so with
    :data:`CANONICAL` the result is ``[concretize(trace, n)]`` when that log is
    faithful and ``[]`` when it is not.
    """
    states = run(trace, n, tables)

    def walk(node: _Node, ledger: Ledger | None, i: int) -> Iterator[list[Event]]:
        if i == len(trace):
            yield list(node.log)
            return
        children = list(_children(node, trace[i], states[i], states[i + 1], variants))
        for k, child in enumerate(children):
            child_ledger: Ledger | None = None
            if ledger is not None:
                # The last child may take the parent's ledger; the others feed a copy.
                child_ledger = ledger if k == len(children) - 1 else copy.deepcopy(ledger)
                child_ledger.feed(child.log[-1])
                if not follows(child_ledger, states[i + 1], child.slot_calls):
                    continue
            yield from walk(child, child_ledger, i + 1)

    root = _Node((SessionMeta(),), (None,) * n, (None,) * n, (), 0, 0, (1,) * n)
    yield from walk(root, ledger_of(root.log) if variants.faithful else None, 0)
