"""The abstract session: a finite model of the session for N call slots.

What this module owns: the abstract state (the runtime's phase, one
``(CallStatus, Where)`` pair per call slot, and whether user input is queued
behind the open exchange), the abstract events (one per event kind, with slot
parameters), the abstract contract (:class:`Fault`), and the one definition
of the abstract transition.  That definition is written once, over a small
:class:`Logic` interface, so that the same code runs on Python values (the
successor function below) and on Z3 terms (``z3model.py``).  Every decision it
takes about a phase or a call is a lookup in the tables of ``state.py``
(:func:`phase_step`, :func:`call_step` iterate over ``PHASE_TABLE`` and
``CALL_TABLE``); what it adds is the ledger's bookkeeping (``ledger.py``): which
slots an event touches, the open exchange, the queue behind it, flushing.

What it must not know: Z3, concrete events (texts, ids, line numbers: that is
``explore.py``), messages and projectors.

The abstraction
---------------
* A *slot* holds one tool call: its status from the call table, and where the
  call is: ``NOWHERE`` (no call, or a half call that was never sent),
  ``EXCHANGE`` (in the open exchange, the ledger's ``pending`` item),
  ``CONTEXT`` (in an emitted item) or ``OUT`` (summarized, undone, cleared).
  The exchange is open iff some slot is in ``EXCHANGE``.
* ``assistant`` declares calls into a set of *available* slots: free ones, or
  slots whose call can never be open again (:func:`settled_statuses`, computed
  from the table) and is not in the open exchange; such a call is forgotten
  and the slot reused.  So N bounds the calls of one reply and the calls the
  model tracks at once, not the calls of a session.  Which input each call
  gets comes from ``declare_inputs``.
* ``tool.result`` targets one slot that holds a call, or an unknown id.  Each
  slot stands for a distinct id; a result routed by ``route_result`` among
  calls sharing an id lands on one of them, which is one of these events.
* ``compaction`` covers any set of slots in ``CONTEXT`` (the ledger cuts a
  prefix in emission order; any set over-approximates it).  The open exchange
  is never covered: the ledger emits it after the cut.
* ``undo`` discards a set of ``CONTEXT`` slots, the open exchange and the
  queue; or, when the undone prompt is itself queued, only the end of the
  queue (``partial``; ``rest`` says whether earlier queued input remains).
  ``clear`` discards everything in context.

The contract, per transition (a transition that breaks it is a *fault*; a
faulty state has no successors):

* ``UNPAIRED``  -- after a projection point (an event that enters ``STEP``
  from another phase: ``step.begin``) a call is still open;
* ``ORPHAN`` -- a result ``ANSWER``-s a call that was not open;
* ``INPUT_WHILE_OPEN`` -- user input or a late note enters the context while a
  call is open;
* ``SPLIT_EXCHANGE`` -- compaction summarizes an open call;
* ``REFUSED`` -- the ledger applies an input the call table refuses (the
  ledger would raise).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Generic, Protocol, SupportsIndex, TypeVar, cast

from .events import Assistant, Clear, Compaction, ToolResult, Undo
from .state import (
    CALL_TABLE,
    CLOSING_INPUTS,
    EVENT_KINDS,
    PHASE_TABLE,
    CallInput,
    CallStatus,
    CallTarget,
    Effect,
    Phase,
    PhaseTarget,
    Refusal,
    Step,
    USER_INPUT_KINDS,
    declare_inputs,
)

# ---------------------------------------------------------------------------
# Vocabulary.
# ---------------------------------------------------------------------------


class Where(enum.Enum):
    """Where the call of a slot is, in the ledger's terms."""

    NOWHERE = "nowhere"  # no call, or a half call that was never sent
    EXCHANGE = "exchange"  # in the open exchange (the ledger's pending item)
    CONTEXT = "context"  # in an emitted item
    OUT = "out"  # summarized, undone or cleared


class Fault(enum.Enum):
    """A broken rule of the abstract contract (see the module docstring)."""

    UNPAIRED = "unpaired"
    ORPHAN = "orphan"
    INPUT_WHILE_OPEN = "input_while_open"
    SPLIT_EXCHANGE = "split_exchange"
    REFUSED = "refused"



PHASES: Final = tuple(Phase)
STATUSES: Final = tuple(CallStatus)
INPUTS: Final = tuple(CallInput)

#: The value of an unused per-slot input parameter (one encoding per event).
DEFAULT_INPUT: Final = CallInput.DECLARE


@dataclass(frozen=True, eq=False)
class Tables:
    """The rules the abstraction reads; a mutated copy makes a mutant model."""

    phase: Mapping[Phase, Mapping[str, PhaseTarget]] = dataclasses.field(default_factory=lambda: PHASE_TABLE)
    call: Mapping[CallStatus, Mapping[CallInput, CallTarget]] = dataclasses.field(default_factory=lambda: CALL_TABLE)
    closing: Mapping[str, CallInput] = dataclasses.field(default_factory=lambda: CLOSING_INPUTS)

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        """:data:`TABLES` unpickles as itself in another process: the caches keyed by the
        tables (they compare by identity) then serve every task sent there."""
        if self is TABLES:
            return "TABLES"  # the module global of that name
        return super().__reduce_ex__(protocol)


#: The tables of ``state.py``.
TABLES: Final = Tables()


def with_call(tables: Tables, status: CallStatus, call_input: CallInput, target: CallTarget) -> Tables:
    """A copy of ``tables`` whose call table says ``target`` for ``(status, call_input)``."""
    call = {s: dict(row) for s, row in tables.call.items()}
    call[status][call_input] = target
    return Tables(tables.phase, call, tables.closing)


# ---------------------------------------------------------------------------
# The logic the transition is written in.
# ---------------------------------------------------------------------------

B = TypeVar("B")  # a truth value: bool, or a Z3 Boolean term
E = TypeVar("E")  # an enum value: an enum member, or a Z3 term of an enum sort
K = TypeVar("K", bound=enum.Enum)


class Logic(Protocol[B, E]):
    """What the transition needs from its values; Python and Z3 implement it."""

    def truth(self, value: bool) -> B: ...

    def const(self, value: enum.Enum) -> E: ...

    def is_(self, term: E, value: enum.Enum) -> B: ...

    def not_(self, a: B) -> B: ...

    def all_(self, items: Iterable[B]) -> B: ...

    def any_(self, items: Iterable[B]) -> B: ...

    def ite(self, cond: B, then: E, other: E) -> E: ...

    def ite_b(self, cond: B, then: B, other: B) -> B: ...

    def cases(self, term: E, domain: Sequence[K], branch: Callable[[K], E]) -> E:
        """``branch(v)`` for the value ``v`` of ``term`` (domain: every value)."""
        ...

    def cases_b(self, term: E, domain: Sequence[K], branch: Callable[[K], B]) -> B: ...


class PyLogic:
    """:class:`Logic` on Python values: evaluates."""

    def truth(self, value: bool) -> bool:
        return value

    def const(self, value: enum.Enum) -> enum.Enum:
        return value

    def is_(self, term: enum.Enum, value: enum.Enum) -> bool:
        return term is value

    def not_(self, a: bool) -> bool:
        return not a

    def all_(self, items: Iterable[bool]) -> bool:
        return all(items)

    def any_(self, items: Iterable[bool]) -> bool:
        return any(items)

    def ite(self, cond: bool, then: enum.Enum, other: enum.Enum) -> enum.Enum:
        return then if cond else other

    def ite_b(self, cond: bool, then: bool, other: bool) -> bool:
        return then if cond else other

    def cases(self, term: enum.Enum, domain: Sequence[K], branch: Callable[[K], enum.Enum]) -> enum.Enum:
        return branch(cast(K, term))

    def cases_b(self, term: enum.Enum, domain: Sequence[K], branch: Callable[[K], bool]) -> bool:
        return branch(cast(K, term))


PY: Final = PyLogic()


def _implies(alg: Logic[B, E], a: B, b: B) -> B:
    return alg.any_((alg.not_(a), b))


# ---------------------------------------------------------------------------
# Table lookups: the only place the transition reads a rule.
# ---------------------------------------------------------------------------


def phase_step(alg: Logic[B, E], tables: Tables, phase: E, kind: str) -> tuple[E, B]:
    """The next phase after ``kind``, and whether ``PHASE_TABLE`` allows it."""

    def to(p: Phase) -> Phase:
        t = tables.phase[p][kind]
        nxt: Phase = t if isinstance(t, Phase) else p
        return nxt

    nxt = alg.cases(phase, PHASES, lambda p: alg.const(to(p)))
    allowed = alg.cases_b(phase, PHASES, lambda p: alg.truth(isinstance(tables.phase[p][kind], Phase)))
    return nxt, allowed


def call_step(alg: Logic[B, E], tables: Tables, status: E, call_input: E) -> tuple[E, E, B]:
    """``CALL_TABLE[status][call_input]``: the next status, the effect, and whether it is refused."""

    def target(s: CallStatus, x: CallInput) -> CallTarget:
        return tables.call[s][x]

    def to(s: CallStatus, x: CallInput) -> enum.Enum:
        t = target(s, x)
        nxt: enum.Enum = t.to if isinstance(t, Step) else s
        return nxt

    def effect(s: CallStatus, x: CallInput) -> enum.Enum:
        t = target(s, x)
        eff: enum.Enum = t.effect if isinstance(t, Step) else Effect.NONE
        return eff

    statuses, inputs = STATUSES, INPUTS
    nxt = alg.cases(status, statuses, lambda s: alg.cases(call_input, inputs, lambda x: alg.const(to(s, x))))
    eff = alg.cases(status, statuses, lambda s: alg.cases(call_input, inputs, lambda x: alg.const(effect(s, x))))
    refused = alg.cases_b(
        status, statuses, lambda s: alg.cases_b(call_input, inputs, lambda x: alg.truth(isinstance(target(s, x), Refusal)))
    )
    return nxt, eff, refused


@lru_cache(maxsize=None)
def declaring_inputs() -> frozenset[CallInput]:
    """The inputs ``declare_inputs`` hands out."""
    return frozenset(x for n in range(3) for complete in (True, False) for x in declare_inputs(n, complete))


@lru_cache(maxsize=None)
def settled_statuses(tables: Tables) -> frozenset[CallStatus]:
    """Statuses from which no input but a declaration leads to ``OPEN``: such a call can be forgotten."""
    moves: dict[CallStatus, set[CallStatus]] = {s: set() for s in CallStatus}
    for s, row in tables.call.items():
        for x, t in row.items():
            if isinstance(t, Step) and x not in declaring_inputs():
                moves[s].add(t.to)

    def reaches_open(start: CallStatus) -> bool:
        seen, todo = {start}, [start]
        while todo:
            s = todo.pop()
            if s is CallStatus.OPEN:
                return True
            for t in moves[s] - seen:
                seen.add(t)
                todo.append(t)
        return False

    return frozenset(s for s in CallStatus if not reaches_open(s))


# ---------------------------------------------------------------------------
# Frames, parameters, outcomes: the transition's inputs and outputs.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame(Generic[B, E]):
    """An abstract state as values of a :class:`Logic` (no faults: those are outputs)."""

    phase: E
    status: tuple[E, ...]
    where: tuple[E, ...]
    queued: B


@dataclass(frozen=True)
class Params(Generic[B, E]):
    """An abstract event's parameters; the kind is passed separately.

    ``sel``: the slots the event names; ``inp``: per slot, the declaring input
    (``assistant``; :data:`DEFAULT_INPUT` elsewhere); ``partial``/``rest``: undo.
    """

    sel: tuple[B, ...]
    inp: tuple[E, ...]
    partial: B
    rest: B


@dataclass(frozen=True)
class Outcome(Generic[B, E]):
    guard: B
    frame: Frame[B, E]
    faults: tuple[tuple[Fault, B], ...]


_Result = tuple[B, Frame[B, E], list[tuple[Fault, B]]]


def _defaults(alg: Logic[B, E], p: Params[B, E], *, sel: bool = False, inp: bool = False, undo: bool = False) -> B:
    """Parameters the kind does not use hold their defaults, so that every event has one encoding."""
    conds: list[B] = []
    if not sel:
        conds += [alg.not_(s) for s in p.sel]
    if not inp:
        conds += [alg.is_(x, DEFAULT_INPUT) for x in p.inp]
    if not undo:
        conds += [alg.not_(p.partial), alg.not_(p.rest)]
    return alg.all_(conds)


def _is_open(alg: Logic[B, E], status: E) -> B:
    return alg.is_(status, CallStatus.OPEN)


def _any_open(alg: Logic[B, E], status: Sequence[E]) -> B:
    return alg.any_(_is_open(alg, s) for s in status)


def _in(alg: Logic[B, E], f: Frame[B, E], where: Where) -> list[B]:
    return [alg.is_(w, where) for w in f.where]


def _apply(
    alg: Logic[B, E], tables: Tables, f: Frame[B, E], mask: Sequence[B], inputs: Sequence[E]
) -> tuple[tuple[E, ...], list[E], B]:
    """Give each masked slot its input: new statuses, effects, and whether the table refused one."""
    stepped = [call_step(alg, tables, s, x) for s, x in zip(f.status, inputs)]
    status = tuple(alg.ite(m, to, s) for m, (to, _, _), s in zip(mask, stepped, f.status))
    refused = alg.any_(alg.all_((m, r)) for m, (_, _, r) in zip(mask, stepped))
    return status, [eff for _, eff, _ in stepped], refused


def _flush(alg: Logic[B, E], f: Frame[B, E], cond: B) -> tuple[Frame[B, E], B]:
    """When ``cond``: the open exchange and the queue behind it are emitted."""
    where = tuple(
        alg.ite(alg.all_((cond, e)), alg.const(Where.CONTEXT), w) for e, w in zip(_in(alg, f, Where.EXCHANGE), f.where)
    )
    fault = alg.all_((cond, f.queued, _any_open(alg, f.status)))
    return dataclasses.replace(f, where=where, queued=alg.ite_b(cond, alg.truth(False), f.queued)), fault


def _arrive(alg: Logic[B, E], f: Frame[B, E], cond: B) -> tuple[Frame[B, E], B]:
    """When ``cond``: user input arrives; it waits behind an open exchange, else it is emitted."""
    exchange_open = alg.any_(_in(alg, f, Where.EXCHANGE))
    queued = alg.ite_b(cond, alg.any_((f.queued, exchange_open)), f.queued)
    fault = alg.all_((cond, alg.not_(exchange_open), _any_open(alg, f.status)))
    return dataclasses.replace(f, queued=queued), fault


def _close(alg: Logic[B, E], tables: Tables, f: Frame[B, E], call_input: CallInput) -> tuple[Frame[B, E], B, B]:
    """``Ledger._close_pending``: the exchange's calls get ``call_input``, then it is flushed."""
    exchange = _in(alg, f, Where.EXCHANGE)
    status, _, refused = _apply(alg, tables, f, exchange, [alg.const(call_input)] * len(f.status))
    flushed, fault = _flush(alg, dataclasses.replace(f, status=status), alg.any_(exchange))
    return flushed, refused, fault


def _discard(alg: Logic[B, E], tables: Tables, f: Frame[B, E], mask: Sequence[B], queued: B) -> _Result[B, E]:
    status, _, refused = _apply(alg, tables, f, mask, [alg.const(CallInput.DISCARD)] * len(f.status))
    where = tuple(alg.ite(m, alg.const(Where.OUT), w) for m, w in zip(mask, f.where))
    return alg.truth(True), Frame(f.phase, status, where, queued), [(Fault.REFUSED, refused)]


# -- one function per kind of event ------------------------------------------


def _user_input(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    arrived, fault = _arrive(alg, f, alg.truth(True))
    return _defaults(alg, p), arrived, [(Fault.INPUT_WHILE_OPEN, fault)]


def _tool_result(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    n = len(f.status)
    at_most_one = alg.all_(alg.not_(alg.all_((p.sel[i], p.sel[j]))) for i in range(n) for j in range(i + 1, n))
    has_call = alg.all_(_implies(alg, s, alg.not_(alg.is_(st, CallStatus.FREE))) for s, st in zip(p.sel, f.status))
    status, effects, refused = _apply(alg, tables, f, p.sel, [alg.const(CallInput.RESULT)] * n)

    def effect_is(effect: Effect) -> list[B]:
        return [alg.all_((s, alg.is_(e, effect))) for s, e in zip(p.sel, effects)]

    answered, noted = alg.any_(effect_is(Effect.ANSWER)), alg.any_(effect_is(Effect.NOTE))
    orphan = alg.any_(alg.all_((a, alg.not_(_is_open(alg, st)))) for a, st in zip(effect_is(Effect.ANSWER), f.status))
    stepped = dataclasses.replace(f, status=status)
    exchange = _in(alg, stepped, Where.EXCHANGE)
    still_open = alg.any_(alg.all_((e, _is_open(alg, st))) for e, st in zip(exchange, status))
    flushed, flush_fault = _flush(alg, stepped, alg.all_((answered, alg.any_(exchange), alg.not_(still_open))))
    arrived, note_fault = _arrive(alg, flushed, noted)
    guard = alg.all_((at_most_one, has_call, _defaults(alg, p, sel=True)))
    faults = [(Fault.ORPHAN, orphan), (Fault.REFUSED, refused), (Fault.INPUT_WHILE_OPEN, alg.any_((flush_fault, note_fault)))]
    return guard, arrived, faults


def _closing(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    closed, refused, fault = _close(alg, tables, f, tables.closing[kind])
    return _defaults(alg, p), closed, [(Fault.REFUSED, refused), (Fault.INPUT_WHILE_OPEN, fault)]


def _assistant(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    n = len(f.status)

    def matches(vector: Mapping[int, CallInput]) -> B:
        return alg.all_(
            alg.all_((p.sel[i], alg.is_(p.inp[i], vector[i]))) if i in vector else alg.all_((alg.not_(p.sel[i]), alg.is_(p.inp[i], DEFAULT_INPUT)))
            for i in range(n)
        )

    settled = settled_statuses(tables)
    available = [
        alg.all_((alg.not_(alg.is_(w, Where.EXCHANGE)), alg.cases_b(st, STATUSES, lambda s: alg.truth(s in settled))))
        for st, w in zip(f.status, f.where)
    ]
    guard = alg.all_((
        alg.any_(matches(v) for v in declare_vectors(n)),
        alg.all_(_implies(alg, s, a) for s, a in zip(p.sel, available)),
        _defaults(alg, p, sel=True, inp=True),
    ))
    # The ledger closes a still-open exchange first (unreachable when step.begin closed it).
    closed, refused_close, fault = _close(alg, tables, f, CallInput.PROJECT)
    # A reused slot forgets its call: every declared call starts from FREE.
    stepped = [call_step(alg, tables, alg.const(CallStatus.FREE), x) for x in p.inp]
    status = tuple(alg.ite(s, to, st) for s, (to, _, _), st in zip(p.sel, stepped, closed.status))
    refused = alg.any_((refused_close, *(alg.all_((s, r)) for s, (_, _, r) in zip(p.sel, stepped))))
    sent = [alg.all_((s, alg.not_(alg.is_(to, CallStatus.DROPPED)))) for s, (to, _, _) in zip(p.sel, stepped)]
    open_item = alg.any_(alg.all_((s, _is_open(alg, to))) for s, (to, _, _) in zip(sent, stepped))
    placed = alg.ite(open_item, alg.const(Where.EXCHANGE), alg.const(Where.CONTEXT))
    where = tuple(
        alg.ite(s, alg.ite(snt, placed, alg.const(Where.NOWHERE)), w) for s, snt, w in zip(p.sel, sent, closed.where)
    )
    frame = Frame(closed.phase, status, where, closed.queued)
    return guard, frame, [(Fault.REFUSED, refused), (Fault.INPUT_WHILE_OPEN, fault)]


def _compaction(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    in_context = _in(alg, f, Where.CONTEXT)
    guard = alg.all_((alg.all_(_implies(alg, s, c) for s, c in zip(p.sel, in_context)), _defaults(alg, p, sel=True)))
    status, _, refused = _apply(alg, tables, f, p.sel, [alg.const(CallInput.SUMMARIZE)] * len(f.status))
    where = tuple(alg.ite(s, alg.const(Where.OUT), w) for s, w in zip(p.sel, f.where))
    split = alg.any_(alg.all_((s, _is_open(alg, st))) for s, st in zip(p.sel, f.status))
    return guard, Frame(f.phase, status, where, f.queued), [(Fault.SPLIT_EXCHANGE, split), (Fault.REFUSED, refused)]


def _undo(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    exchange, in_context = _in(alg, f, Where.EXCHANGE), _in(alg, f, Where.CONTEXT)
    guard = alg.all_((
        alg.all_(_implies(alg, s, c) for s, c in zip(p.sel, in_context)),
        _implies(alg, p.partial, alg.all_((alg.any_(exchange), f.queued, alg.not_(alg.any_(p.sel))))),
        _implies(alg, p.rest, p.partial),
        _defaults(alg, p, sel=True, undo=True),
    ))
    whole = alg.not_(p.partial)
    mask = [alg.all_((whole, alg.any_((s, e)))) for s, e in zip(p.sel, exchange)]
    _, frame, faults = _discard(alg, tables, f, mask, alg.ite_b(p.partial, p.rest, alg.truth(False)))
    return guard, frame, faults


def _clear(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    mask = [alg.any_((e, c)) for e, c in zip(_in(alg, f, Where.EXCHANGE), _in(alg, f, Where.CONTEXT))]
    _, frame, faults = _discard(alg, tables, f, mask, alg.truth(False))
    return _defaults(alg, p), frame, faults


def _phase_only(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> _Result[B, E]:
    return _defaults(alg, p), f, []


_SPECIAL: Final = {
    ToolResult.type: _tool_result,
    Assistant.type: _assistant,
    Compaction.type: _compaction,
    Undo.type: _undo,
    Clear.type: _clear,
}


def outcome(alg: Logic[B, E], tables: Tables, kind: str, f: Frame[B, E], p: Params[B, E]) -> Outcome[B, E]:
    """The abstract transition: event ``kind`` with parameters ``p`` in state ``f``."""
    phase, allowed = phase_step(alg, tables, f.phase, kind)
    if kind in USER_INPUT_KINDS:
        guard, frame, faults = _user_input(alg, tables, kind, f, p)
    elif kind in tables.closing:
        guard, frame, faults = _closing(alg, tables, kind, f, p)
    elif kind in _SPECIAL:
        guard, frame, faults = _SPECIAL[kind](alg, tables, kind, f, p)
    else:
        guard, frame, faults = _phase_only(alg, tables, kind, f, p)
    # A projection point: the event enters STEP (a request is built now).
    projects = alg.all_((alg.not_(alg.is_(f.phase, Phase.STEP)), alg.is_(phase, Phase.STEP)))
    faults = [*faults, (Fault.UNPAIRED, alg.all_((projects, _any_open(alg, frame.status))))]
    return Outcome(alg.all_((allowed, guard)), dataclasses.replace(frame, phase=phase), tuple(faults))


# ---------------------------------------------------------------------------
# Concrete abstract states and events.
# ---------------------------------------------------------------------------

_STATUS_ORDER: Final = {s: i for i, s in enumerate(CallStatus)}
_WHERE_ORDER: Final = {w: i for i, w in enumerate(Where)}
_KIND_ORDER: Final = {k: i for i, k in enumerate(EVENT_KINDS)}


@dataclass(frozen=True, slots=True)
class Slot:
    status: CallStatus = CallStatus.FREE
    where: Where = Where.NOWHERE

    def key(self) -> tuple[int, int]:
        return _STATUS_ORDER[self.status], _WHERE_ORDER[self.where]

    def __str__(self) -> str:
        return f"{self.status.value}@{self.where.value}"


@dataclass(frozen=True, slots=True)
class AState:
    """An abstract session state; ``faults``: what the transition into it broke."""

    phase: Phase
    slots: tuple[Slot, ...]
    queued: bool = False
    faults: frozenset[Fault] = frozenset()

    @property
    def exchange_open(self) -> bool:
        return any(s.where is Where.EXCHANGE for s in self.slots)

    def __str__(self) -> str:
        flags = " queued" if self.queued else ""
        bad = f" FAULT {','.join(sorted(f.value for f in self.faults))}" if self.faults else ""
        return f"{self.phase.value} [{' '.join(map(str, self.slots))}]{flags}{bad}"


@dataclass(frozen=True, slots=True)
class AEvent:
    """An abstract event.

    ``slots``: ``assistant`` -- the declared slots in call order (the last one
    is the half call of a cut message); ``tool.result`` -- the target, or
    ``()`` for an unknown id; ``compaction`` -- the covered slots; ``undo`` --
    the discarded context slots.  ``partial``/``rest``: see the module docstring.
    """

    kind: str
    slots: tuple[int, ...] = ()
    complete: bool = True
    partial: bool = False
    rest: bool = False

    def key(self) -> tuple[int, ...]:
        """A total order on events (used to pick canonical traces)."""
        return (_KIND_ORDER[self.kind], len(self.slots), *self.slots, not self.complete, self.partial, self.rest)

    def __str__(self) -> str:
        args = ",".join(map(str, self.slots))
        if self.kind == ToolResult.type and not self.slots:
            args = "?"
        extra = (" cut" if not self.complete else "") + (f" partial rest={self.rest}" if self.partial else "")
        return f"{self.kind}({args}{extra})"


def initial_state(n: int) -> AState:
    return AState(Phase.IDLE, (Slot(),) * n)


def abstract_violations(state: AState) -> tuple[Fault, ...]:
    """The rules of the abstract contract the transition into ``state`` broke."""
    return tuple(f for f in Fault if f in state.faults)


def frame_of(state: AState) -> Frame[bool, enum.Enum]:
    return Frame(
        state.phase,
        tuple(s.status for s in state.slots),
        tuple(s.where for s in state.slots),
        state.queued,
    )


def _as(cls: type[K], value: enum.Enum) -> K:
    assert isinstance(value, cls), (cls, value)
    return value


def state_of(frame: Frame[bool, enum.Enum], faults: frozenset[Fault] = frozenset()) -> AState:
    slots = tuple(Slot(_as(CallStatus, s), _as(Where, w)) for s, w in zip(frame.status, frame.where))
    return AState(_as(Phase, frame.phase), slots, frame.queued, faults)


def declare_vector(event: AEvent) -> dict[int, CallInput]:
    """The declaring input of each slot an ``assistant`` event names."""
    return dict(zip(event.slots, declare_inputs(len(event.slots), event.complete)))


def params_of(event: AEvent, n: int) -> Params[bool, enum.Enum]:
    vector = declare_vector(event) if event.kind == Assistant.type else {}
    return Params(
        sel=tuple(i in event.slots for i in range(n)),
        inp=tuple(vector.get(i, DEFAULT_INPUT) for i in range(n)),
        partial=event.partial,
        rest=event.rest,
    )


@lru_cache(maxsize=None)
def _assistant_events(n: int) -> dict[tuple[tuple[int, CallInput], ...], AEvent]:
    """One ``assistant`` event per distinct vector of declaring inputs (the lexicographically first)."""
    out: dict[tuple[tuple[int, CallInput], ...], AEvent] = {}
    for k in range(n + 1):
        for complete in (True, False):
            for placement in itertools.permutations(range(n), k):
                event = AEvent(Assistant.type, placement, complete)
                out.setdefault(tuple(sorted(declare_vector(event).items(), key=lambda kv: kv[0])), event)
    return out


@lru_cache(maxsize=None)
def declare_vectors(n: int) -> tuple[Mapping[int, CallInput], ...]:
    """Every way one ``assistant`` event can declare calls into ``n`` slots."""
    return tuple(MappingProxyType(dict(v)) for v in _assistant_events(n))


def _subsets(n: int) -> Iterator[tuple[int, ...]]:
    for k in range(n + 1):
        yield from itertools.combinations(range(n), k)


@lru_cache(maxsize=None)
def candidate_events(n: int) -> tuple[AEvent, ...]:
    """Every abstract event over ``n`` slots, enabled or not, in :meth:`AEvent.key` order."""
    out: list[AEvent] = []
    for kind in EVENT_KINDS:
        if kind == Assistant.type:
            out += _assistant_events(n).values()
        elif kind == ToolResult.type:
            out += [AEvent(kind)] + [AEvent(kind, (i,)) for i in range(n)]
        elif kind == Compaction.type:
            out += [AEvent(kind, s) for s in _subsets(n)]
        elif kind == Undo.type:
            out += [AEvent(kind, s) for s in _subsets(n)]
            out += [AEvent(kind, (), partial=True, rest=r) for r in (False, True)]
        else:
            out.append(AEvent(kind))
    return tuple(sorted(out, key=AEvent.key))


def rename(event: AEvent, perm: Sequence[int]) -> AEvent:
    """``event`` with slot ``i`` renamed ``perm[i]`` (in its canonical form)."""
    if event.kind == Assistant.type:
        vector = tuple(sorted((perm[i], x) for i, x in declare_vector(event).items()))
        return _assistant_events(len(perm))[vector]
    return dataclasses.replace(event, slots=tuple(sorted(perm[i] for i in event.slots)))


def rename_state(state: AState, perm: Sequence[int]) -> AState:
    slots = [Slot()] * len(state.slots)
    for i, s in enumerate(state.slots):
        slots[perm[i]] = s
    return dataclasses.replace(state, slots=tuple(slots))


def canonical_state(state: AState) -> AState:
    """The representative of ``state`` modulo renaming of slots."""
    return dataclasses.replace(state, slots=tuple(sorted(state.slots, key=Slot.key)))


# ---------------------------------------------------------------------------
# The successor function.
# ---------------------------------------------------------------------------


def step(state: AState, event: AEvent, tables: Tables = TABLES) -> AState | None:
    """The state after ``event``, or ``None`` when it cannot happen in ``state``."""
    if state.faults or isinstance(tables.phase[state.phase][event.kind], Refusal):
        return None
    out = outcome(PY, tables, event.kind, frame_of(state), params_of(event, len(state.slots)))
    if not out.guard:
        return None
    return state_of(out.frame, frozenset(f for f, hit in out.faults if hit))


@lru_cache(maxsize=1 << 16)
def _successors(state: AState, tables: Tables) -> tuple[tuple[AEvent, AState], ...]:
    out: list[tuple[AEvent, AState]] = []
    for event in candidate_events(len(state.slots)):
        nxt = step(state, event, tables)
        if nxt is not None:
            out.append((event, nxt))
    return tuple(out)


def successors(state: AState, tables: Tables = TABLES) -> tuple[tuple[AEvent, AState], ...]:
    """Every abstract event enabled in ``state`` and the state it leads to (in event order)."""
    return _successors(state, tables)


def run(trace: Iterable[AEvent], n: int, tables: Tables = TABLES) -> list[AState]:
    """The states a trace goes through (the initial one first); raises if an event cannot happen."""
    states = [initial_state(n)]
    for event in trace:
        nxt = step(states[-1], event, tables)
        if nxt is None:
            raise ValueError(f"{event} cannot happen in {states[-1]}")
        states.append(nxt)
    return states


def reachable_states(n: int, tables: Tables = TABLES) -> dict[AState, tuple[AEvent, ...]]:
    """Every reachable state modulo renaming (sorted slots), with a shortest trace to a renaming of it."""
    start = initial_state(n)
    found: dict[AState, tuple[AEvent, ...]] = {start: ()}
    frontier: list[tuple[AState, tuple[AEvent, ...]]] = [(start, ())]
    while frontier:
        nxt_frontier: list[tuple[AState, tuple[AEvent, ...]]] = []
        for state, trace in frontier:
            for event, nxt in successors(state, tables):
                key = canonical_state(nxt)
                if key not in found:
                    found[key] = trace + (event,)
                    nxt_frontier.append((nxt, trace + (event,)))
        frontier = nxt_frontier
    return found


def live_call_entries(
    n: int, tables: Tables = TABLES, among: Iterable[tuple[CallStatus, CallInput]] | None = None
) -> frozenset[tuple[CallStatus, CallInput]]:
    """The entries of the call table (or of ``among``) some reachable transition applies, with ``n`` slots.

    An entry is probed by turning it into a refusal: it is live iff a
    ``REFUSED`` fault becomes reachable.
    """
    probe = Refusal("probe", "is this entry ever applied?")
    entries = list(among) if among is not None else [(s, x) for s, row in tables.call.items() for x in row]
    live = (
        (status, call_input)
        for status, call_input in entries
        if any(Fault.REFUSED in s.faults for s in reachable_states(n, with_call(tables, status, call_input, probe)))
    )
    return frozenset(live)
