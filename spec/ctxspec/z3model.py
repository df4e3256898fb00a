"""The abstract session in Z3: bounded model checking and an inductive proof.

What this module owns: the Z3 encoding of the abstract session of
``abstract.py`` -- two encodings of its finite domains (bit-vectors, so that
bounded checks run in Z3's incremental ``QF_FD`` solver; enumeration sorts,
so that the Horn engine's invariant reads as the model's own words); one
symbolic transition relation per (encoding, tables, N); and its uses:
:func:`slot_invariant` (the least set of *views* -- shared phase, queue flag,
exchange open, one slot's status and place -- closed under the fault-free
transitions; it is N-independent from N = 2 on, see ``docs/proof.md``),
:func:`bmc` (bounded model checking with one assumption literal per depth,
shortest counterexample first, each unrolled state constrained by the
per-slot invariant as a lemma), :func:`prove` (constrained Horn clauses over
an uninterpreted invariant ``Inv``, solved by Z3's ``HORN`` engine, with
:func:`check_invariant` to re-check the invariant it finds),
:func:`prove_report` (all of it, rendered for ``ctxcontract prove``),
:func:`enumerate_traces` (every trace of a length, by blocking clauses) and
:func:`successors` (one step, to compare with ``abstract.successors``).

What it must not know: any rule.  The transition relation is
``abstract.outcome`` run on Z3 terms (:class:`Z3Logic`): the phase and call
tables are enumerated, entry by entry, into ``If`` chains by
``abstract.phase_step`` and ``abstract.call_step``; this module only wires the
result into solvers.  Nothing here knows concrete events or messages.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import z3

from .abstract import (
    TABLES,
    AEvent,
    AState,
    Fault,
    Frame,
    Outcome,
    Params,
    Tables,
    Where,
    candidate_events,
    initial_state,
    outcome,
    params_of,
    reachable_states,
    run,
    state_of,
)
from .state import EVENT_KINDS, CallInput, CallStatus, Effect, Phase

# ---------------------------------------------------------------------------
# Sorts and the logic on Z3 terms.
# ---------------------------------------------------------------------------

#: The finite domains of the encoding, by name.
DOMAINS: Final[dict[str, tuple[Any, ...]]] = {
    **{cls.__name__: tuple(cls) for cls in (Phase, CallStatus, CallInput, Effect, Where)},
    "Kind": EVENT_KINDS,
}


def _domain_of(value: Any) -> str:
    return "Kind" if isinstance(value, str) else type(value).__name__


class Codec:
    """How a finite domain is represented in Z3."""

    name: str

    def sort(self, domain: str) -> Any:
        raise NotImplementedError

    def const(self, value: Any) -> Any:
        raise NotImplementedError

    def decode(self, value: Any, domain: str) -> Any:
        raise NotImplementedError

    def valid(self, term: Any, domain: str) -> Any:
        """The term holds a value of the domain."""
        raise NotImplementedError


class EnumCodec(Codec):
    """Enumeration sorts: readable models and invariants (the Horn engine takes them)."""

    name = "enum"

    @staticmethod
    @lru_cache(maxsize=None)
    def _sorts() -> dict[str, tuple[Any, dict[Any, Any], dict[str, Any]]]:
        out = {}
        for name, values in DOMAINS.items():
            sort, consts = z3.EnumSort(name, [v if isinstance(v, str) else f"{name}.{v.name}" for v in values])
            out[name] = (sort, dict(zip(values, consts)), {str(c): v for v, c in zip(values, consts)})
        return out

    def sort(self, domain: str) -> Any:
        return self._sorts()[domain][0]

    def const(self, value: Any) -> Any:
        return self._sorts()[_domain_of(value)][1][value]

    def decode(self, value: Any, domain: str) -> Any:
        return self._sorts()[domain][2][str(value)]

    def valid(self, term: Any, domain: str) -> Any:
        return z3.BoolVal(True)


class BitVecCodec(Codec):
    """Bit-vectors holding the value's index: pure QF_FD, which Z3's SAT core solves incrementally.

    (Z3's incremental QF_FD solver gives up on enumeration sorts asserted after
    the first check, so BMC cannot use them.)
    """

    name = "bv"

    @staticmethod
    def _width(domain: str) -> int:
        return max(1, (len(DOMAINS[domain]) - 1).bit_length())

    def sort(self, domain: str) -> Any:
        return z3.BitVecSort(self._width(domain))

    def const(self, value: Any) -> Any:
        domain = _domain_of(value)
        return z3.BitVecVal(DOMAINS[domain].index(value), self._width(domain))

    def decode(self, value: Any, domain: str) -> Any:
        return DOMAINS[domain][value.as_long()]

    def valid(self, term: Any, domain: str) -> Any:
        size, width = len(DOMAINS[domain]), self._width(domain)
        if size == 1 << width:  # every bit pattern is a value (and ``size`` would wrap to 0)
            return z3.BoolVal(True)
        return z3.ULT(term, z3.BitVecVal(size, width))


ENUM: Final = EnumCodec()
BITVEC: Final = BitVecCodec()
CODECS: Final[dict[str, Codec]] = {c.name: c for c in (ENUM, BITVEC)}


class Z3Logic:
    """:class:`abstract.Logic` on Z3 terms: builds formulas."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def truth(self, value: bool) -> Any:
        return z3.BoolVal(value)

    def const(self, value: enum.Enum) -> Any:
        return self.codec.const(value)

    def is_(self, term: Any, value: enum.Enum) -> Any:
        return term == self.const(value)

    def not_(self, a: Any) -> Any:
        return z3.Not(a)

    def all_(self, items: Iterable[Any]) -> Any:
        xs = list(items)
        return z3.And(xs) if xs else z3.BoolVal(True)

    def any_(self, items: Iterable[Any]) -> Any:
        xs = list(items)
        return z3.Or(xs) if xs else z3.BoolVal(False)

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        return z3.If(cond, then, other)

    def ite_b(self, cond: Any, then: Any, other: Any) -> Any:
        return z3.If(cond, then, other)

    def cases(self, term: Any, domain: Sequence[Any], branch: Callable[[Any], Any]) -> Any:
        """An ``If`` chain over the domain; a constant term picks its branch at once."""
        for value in domain:
            if term.eq(self.const(value)):
                return branch(value)
        expr = branch(domain[-1])
        for value in reversed(domain[:-1]):
            expr = z3.If(term == self.const(value), branch(value), expr)
        return expr

    def cases_b(self, term: Any, domain: Sequence[Any], branch: Callable[[Any], Any]) -> Any:
        return self.cases(term, domain, branch)



# ---------------------------------------------------------------------------
# The symbolic transition relation.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """The variables of one symbolic abstract event."""

    kind: Any
    params: Params[Any, Any]

    def variables(self) -> list[Any]:
        p = self.params
        return [self.kind, *p.sel, *p.inp, p.partial, p.rest]


@dataclass(frozen=True)
class Transition:
    """``guard``: the event can happen; ``nxt``: the state after it; ``faults``: what it breaks."""

    guard: Any
    nxt: Frame[Any, Any]
    faults: dict[Fault, Any]

    @property
    def fault(self) -> Any:
        return z3.Or(list(self.faults.values()))


def state_vars(codec: Codec, n: int, tag: str) -> Frame[Any, Any]:
    return Frame(
        z3.Const(f"phase@{tag}", codec.sort("Phase")),
        tuple(z3.Const(f"status{i}@{tag}", codec.sort("CallStatus")) for i in range(n)),
        tuple(z3.Const(f"where{i}@{tag}", codec.sort("Where")) for i in range(n)),
        z3.Bool(f"queued@{tag}"),
    )


def event_vars(codec: Codec, n: int, tag: str) -> Event:
    return Event(
        z3.Const(f"kind@{tag}", codec.sort("Kind")),
        Params(
            tuple(z3.Bool(f"sel{i}@{tag}") for i in range(n)),
            tuple(z3.Const(f"inp{i}@{tag}", codec.sort("CallInput")) for i in range(n)),
            z3.Bool(f"partial@{tag}"),
            z3.Bool(f"rest@{tag}"),
        ),
    )


def frame_terms(f: Frame[Any, Any]) -> list[Any]:
    return [f.phase, *f.status, *f.where, f.queued]


def _frame_domains(n: int) -> list[str | None]:
    return ["Phase", *["CallStatus"] * n, *["Where"] * n, None]


def frame_valid(codec: Codec, f: Frame[Any, Any]) -> Any:
    """Every component of ``f`` holds a value of its domain."""
    n = len(f.status)
    return z3.And([codec.valid(t, d) for t, d in zip(frame_terms(f), _frame_domains(n)) if d is not None])


def frame_value(codec: Codec, state: AState) -> Frame[Any, Any]:
    """A concrete abstract state as Z3 constants."""
    return Frame(
        codec.const(state.phase),
        tuple(codec.const(s.status) for s in state.slots),
        tuple(codec.const(s.where) for s in state.slots),
        z3.BoolVal(state.queued),
    )


def _equal(a: Frame[Any, Any], b: Frame[Any, Any]) -> Any:
    return z3.And([x == y for x, y in zip(frame_terms(a), frame_terms(b))])


def transition(codec: Codec, tables: Tables, s: Frame[Any, Any], e: Event) -> Transition:
    """The transition relation: ``abstract.outcome`` for every kind, selected by ``e.kind``."""
    logic = Z3Logic(codec)
    outs: dict[str, Outcome[Any, Any]] = {k: outcome(logic, tables, k, s, e.params) for k in EVENT_KINDS}
    is_kind = {k: e.kind == codec.const(k) for k in EVENT_KINDS}

    def pick(get: Callable[[Frame[Any, Any]], Any]) -> Any:
        expr = get(outs[EVENT_KINDS[-1]].frame)
        for k in reversed(EVENT_KINDS[:-1]):
            expr = z3.If(is_kind[k], get(outs[k].frame), expr)
        return z3.simplify(expr)

    def component(i: int) -> Callable[[Frame[Any, Any]], Any]:
        return lambda f: frame_terms(f)[i]

    parts = [pick(component(i)) for i in range(len(frame_terms(s)))]
    n = len(s.status)
    nxt = Frame(parts[0], tuple(parts[1 : 1 + n]), tuple(parts[1 + n : 1 + 2 * n]), parts[-1])
    guard = z3.simplify(z3.Or([z3.And(is_kind[k], outs[k].guard) for k in EVENT_KINDS]))
    faults = {
        fault: z3.simplify(z3.Or([z3.And(is_kind[k], hit) for k in EVENT_KINDS for f, hit in outs[k].faults if f is fault]))
        for fault in Fault
    }
    return Transition(guard, nxt, faults)


@dataclass(frozen=True)
class _Template:
    s: Frame[Any, Any]
    e: Event
    t: Transition


@lru_cache(maxsize=32)
def _template(codec: Codec, tables: Tables, n: int) -> _Template:
    s, e = state_vars(codec, n, "s"), event_vars(codec, n, "e")
    return _Template(s, e, transition(codec, tables, s, e))


def instantiate(codec: Codec, tables: Tables, s: Frame[Any, Any], e: Event) -> Transition:
    """The transition relation on given terms (a substituted copy of a cached template)."""
    tpl = _template(codec, tables, len(s.status))
    pairs = list(zip(frame_terms(tpl.s), frame_terms(s))) + list(zip(tpl.e.variables(), e.variables()))

    def sub(x: Any) -> Any:
        return z3.simplify(z3.substitute(x, *pairs))

    t = tpl.t
    nxt = Frame(sub(t.nxt.phase), tuple(map(sub, t.nxt.status)), tuple(map(sub, t.nxt.where)), sub(t.nxt.queued))
    return Transition(sub(t.guard), nxt, {f: sub(x) for f, x in t.faults.items()})


# ---------------------------------------------------------------------------
# Reading models back.
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _event_table(n: int) -> dict[tuple[object, ...], AEvent]:
    """Parameter values -> abstract event, for every candidate event."""
    out: dict[tuple[object, ...], AEvent] = {}
    for event in candidate_events(n):
        p = params_of(event, n)
        out[(event.kind, p.sel, p.inp, p.partial, p.rest)] = event
    return out


def _read(codec: Codec, model: Any, term: Any, domain: str | None) -> Any:
    v = model.eval(term, model_completion=True)
    if domain is None:
        return z3.is_true(v)
    return codec.decode(v, domain)


def decode_event(codec: Codec, model: Any, e: Event) -> AEvent:
    p = e.params
    key = (
        _read(codec, model, e.kind, "Kind"),
        tuple(_read(codec, model, x, None) for x in p.sel),
        tuple(_read(codec, model, x, "CallInput") for x in p.inp),
        _read(codec, model, p.partial, None),
        _read(codec, model, p.rest, None),
    )
    return _event_table(len(p.sel))[key]


def decode_state(codec: Codec, model: Any, f: Frame[Any, Any], faults: frozenset[Fault] = frozenset()) -> AState:
    values = [_read(codec, model, t, d) for t, d in zip(frame_terms(f), _frame_domains(len(f.status)))]
    n = len(f.status)
    return state_of(Frame(values[0], tuple(values[1 : 1 + n]), tuple(values[1 + n : 1 + 2 * n]), values[-1]), faults)


def _check(solver: Any, *assumptions: Any) -> bool:
    """``sat`` -> True, ``unsat`` -> False; anything else is an error, never a silent pass."""
    result = solver.check(*assumptions)
    if result == z3.unknown:
        raise RuntimeError(f"Z3 answered unknown: {solver.reason_unknown()}")
    return bool(result == z3.sat)


class _Unrolling:
    """An incremental unrolling from the initial state, one event at a time."""

    def __init__(self, codec: Codec, tables: Tables, n: int, logic: str) -> None:
        self.codec, self.tables, self.n = codec, tables, n
        self.solver = z3.SolverFor(logic)
        self.frames = [state_vars(codec, n, "0")]
        self.events: list[Event] = []
        self.steps: list[Transition] = []
        self.solver.add(_equal(self.frames[0], frame_value(codec, initial_state(n))))

    def extend(self) -> Transition:
        d = len(self.events)
        nxt, event = state_vars(self.codec, self.n, str(d + 1)), event_vars(self.codec, self.n, str(d))
        step = instantiate(self.codec, self.tables, self.frames[-1], event)
        self.solver.add(step.guard, _equal(nxt, step.nxt))
        self.frames.append(nxt)
        self.events.append(event)
        self.steps.append(step)
        return step

    def trace(self, model: Any) -> tuple[AEvent, ...]:
        return tuple(decode_event(self.codec, model, e) for e in self.events)


# ---------------------------------------------------------------------------
# The per-slot invariant: what one slot can look like, found by Z3.
# ---------------------------------------------------------------------------

#: What the per-slot invariant records of one slot: the shared phase, the queue
#: flag, whether the exchange is open (some slot is in it), and the slot's own
#: status and place.
SlotView = tuple[Phase, bool, bool, CallStatus, Where]

_VIEW_DOMAINS: Final = ("Phase", None, None, "CallStatus", "Where")


def _exchange_open(codec: Codec, f: Frame[Any, Any]) -> Any:
    return z3.Or([w == codec.const(Where.EXCHANGE) for w in f.where])


def _views(codec: Codec, f: Frame[Any, Any]) -> list[tuple[Any, ...]]:
    """The :data:`SlotView` of every slot of ``f``, as Z3 terms."""
    shared = (f.phase, f.queued, _exchange_open(codec, f))
    return [(*shared, s, w) for s, w in zip(f.status, f.where)]


def _view_value(codec: Codec, view: SlotView) -> tuple[Any, ...]:
    return tuple(z3.BoolVal(v) if isinstance(v, bool) else codec.const(v) for v in view)


def _view_is(codec: Codec, terms: Sequence[Any], view: SlotView) -> Any:
    return z3.And([t == v for t, v in zip(terms, _view_value(codec, view))])


@lru_cache(maxsize=None)
def _all_views() -> tuple[SlotView, ...]:
    return tuple((p, q, x, s, w) for p in Phase for q in (False, True) for x in (False, True) for s in CallStatus for w in Where)


def render_view(view: SlotView) -> str:
    phase, queued, exchange, status, where = view
    flags = "".join((" queued" if queued else "", " exchange-open" if exchange else ""))
    return f"{phase.value}{flags}: {status.value}@{where.value}"


@dataclass(frozen=True)
class SlotInvariant:
    """``views``: every :data:`SlotView` a slot reaches; the invariant says each slot shows one of them.

    It is the least set that contains the initial view and is closed under
    every fault-free transition of the N-slot model (computed by Z3, from
    below: a counterexample adds the views it reaches).  ``safe``: no
    transition from a state of the invariant breaks the contract, so the
    invariant alone is an inductive proof for N slots.
    """

    slots: int
    views: frozenset[SlotView]
    safe: bool
    rounds: int
    seconds: float

    def formula(self, codec: Codec, f: Frame[Any, Any]) -> Any:
        """The invariant on the state ``f``: every slot shows an allowed view.

        Grouped by the slot's own ``(status, where)``: each pair allows some
        shared contexts ``(phase, queued, exchange open)``, written once per state.
        """
        shared_terms = _views(codec, f)[0][:3] if f.status else ()
        contexts: dict[tuple[Any, ...], Any] = {}
        allowed: dict[tuple[CallStatus, Where], list[Any]] = {}
        for view in sorted(self.views, key=_all_views().index):
            ctx = view[:3]
            if ctx not in contexts:
                phase, queued, exchange = ctx
                values = (codec.const(phase), z3.BoolVal(queued), z3.BoolVal(exchange))
                contexts[ctx] = z3.And([t == v for t, v in zip(shared_terms, values)])
            allowed.setdefault((view[3], view[4]), []).append(contexts[ctx])
        per_slot = [
            z3.Or([z3.And(s == codec.const(st), w == codec.const(wh), z3.Or(ctxs)) for (st, wh), ctxs in allowed.items()])
            for s, w in zip(f.status, f.where)
        ]
        return z3.And(per_slot)

    def render(self) -> str:
        ordered = sorted(self.views, key=_all_views().index)
        return "\n".join(render_view(v) for v in ordered)


def explicit_views(n: int, tables: Tables = TABLES) -> frozenset[SlotView]:
    """The views of the fault-free states ``abstract.reachable_states`` finds for ``n`` slots."""
    return frozenset(
        (s.phase, s.queued, s.exchange_open, slot.status, slot.where)
        for s in reachable_states(n, tables)
        if not s.faults
        for slot in s.slots
    )


#: Slots of the explicit search that seeds :func:`slot_invariant` (cheap, and
#: its views are views of any larger N: pad its states with free slots).
SEED_SLOTS: Final = 2


@lru_cache(maxsize=32)
def slot_invariant(n: int, tables: Tables = TABLES, *, codec: Codec = BITVEC, seeded: bool = True) -> SlotInvariant:
    """The strongest invariant of the form "every slot shows one of these views" (see :class:`SlotInvariant`).

    Start from the initial view (and, when ``seeded``, the views of an
    explicit search with :data:`SEED_SLOTS` slots); while Z3 finds a
    fault-free step from a state of the invariant to a state outside it, add
    the views of that state.  The seed only saves rounds: every seeded view
    is reachable with ``n`` slots too, and the result is checked closed by Z3.
    """
    start = time.perf_counter()
    seed = explicit_views(min(n, SEED_SLOTS), tables) if seeded else frozenset()
    tpl = _template(codec, tables, n)
    views = set(seed) | {_decode_views(codec, None, _views(codec, frame_value(codec, initial_state(n))))[0]}
    rounds = 0
    while True:
        rounds += 1
        inv = SlotInvariant(n, frozenset(views), False, rounds, 0.0)
        solver = z3.SolverFor("QF_FD")
        solver.add(inv.formula(codec, tpl.s), tpl.t.guard, z3.Not(tpl.t.fault), z3.Not(inv.formula(codec, tpl.t.nxt)))
        if not _check(solver):
            break
        views.update(_decode_views(codec, solver.model(), _views(codec, tpl.t.nxt)))
    solver = z3.SolverFor("QF_FD")
    solver.add(inv.formula(codec, tpl.s), tpl.t.guard, tpl.t.fault)
    safe = not _check(solver)
    return SlotInvariant(n, frozenset(views), safe, rounds, time.perf_counter() - start)


def views_inductive(views: Iterable[SlotView], n: int, tables: Tables = TABLES, *, codec: Codec = BITVEC) -> tuple[bool, bool]:
    """For a fixed set of views and ``n`` slots: (the invariant holds initially and is kept by
    every fault-free step, no step from it breaks the contract)."""
    inv = SlotInvariant(n, frozenset(views), False, 0, 0.0)
    tpl = _template(codec, tables, n)
    init = frame_value(codec, initial_state(n))
    escape, fault = z3.SolverFor("QF_FD"), z3.SolverFor("QF_FD")
    escape.add(z3.Or(z3.Not(inv.formula(codec, init)), z3.And(inv.formula(codec, tpl.s), tpl.t.guard, z3.Not(tpl.t.fault), z3.Not(inv.formula(codec, tpl.t.nxt)))))
    fault.add(inv.formula(codec, tpl.s), tpl.t.guard, tpl.t.fault)
    return not _check(escape), not _check(fault)


def _decode_views(codec: Codec, model: Any, views: Sequence[tuple[Any, ...]]) -> list[SlotView]:
    out: list[SlotView] = []
    for terms in views:
        values = []
        for t, d in zip(terms, _VIEW_DOMAINS):
            v = z3.simplify(t) if model is None else model.eval(t, model_completion=True)
            values.append(z3.is_true(v) if d is None else codec.decode(v, d))
        out.append((values[0], values[1], values[2], values[3], values[4]))
    return out


# ---------------------------------------------------------------------------
# Bounded model checking.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BmcResult:
    depth: int
    slots: int
    trace: tuple[AEvent, ...] | None  # the shortest trace to a fault, if any
    faults: tuple[Fault, ...]
    seconds: float
    lemma_seconds: float = 0.0  # time spent computing the per-slot lemma (part of ``seconds``)

    @property
    def found(self) -> bool:
        return self.trace is not None

    def __str__(self) -> str:
        if self.trace is None:
            return f"no violation within {self.depth} events ({self.slots} slots, {self.seconds:.2f}s)"
        events = " ".join(map(str, self.trace))
        faults = ",".join(f.value for f in self.faults)
        return f"{faults} after {len(self.trace)} events ({self.slots} slots, {self.seconds:.2f}s): {events}"


def bmc(
    depth: int, n: int, tables: Tables = TABLES, *, codec: Codec = BITVEC, logic: str = "QF_FD", lemma: bool = True
) -> BmcResult:
    """Search every trace of up to ``depth`` events for a fault, shortest first.

    Depth ``d`` is asked under the assumption literal ``bad@d`` (which implies
    a fault at event ``d``), so one incremental solver serves every depth; a
    depth found safe keeps its fault negated as a lemma.  The trace found is
    replayed on ``abstract.successors`` before it is returned.

    With ``lemma`` (bit-vectors only), every state an event leaves from is
    also constrained by :func:`slot_invariant` of the same tables.  That set
    holds in every state a fault-free prefix reaches, so no trace is lost and
    the shortest counterexample stays the shortest; it only spares the SAT
    solver from rediscovering, at every depth, what a slot can look like.
    """
    start = time.perf_counter()
    inv = slot_invariant(n, tables, codec=codec) if lemma and codec is BITVEC else None
    lemma_seconds = time.perf_counter() - start
    unroll = _Unrolling(codec, tables, n, logic)
    for d in range(depth):
        if inv is not None:
            unroll.solver.add(inv.formula(codec, unroll.frames[-1]))
        step = unroll.extend()
        bad = z3.Bool(f"bad@{d}")
        unroll.solver.add(z3.Implies(bad, step.fault))
        if _check(unroll.solver, bad):
            trace = unroll.trace(unroll.solver.model())
            last = run(trace, n, tables)[-1]
            assert last.faults, f"Z3 and the successor function disagree on {trace}"
            faults = tuple(f for f in Fault if f in last.faults)
            return BmcResult(depth, n, trace, faults, time.perf_counter() - start, lemma_seconds)
        unroll.solver.add(z3.Not(step.fault))
    return BmcResult(depth, n, None, (), time.perf_counter() - start, lemma_seconds)


# ---------------------------------------------------------------------------
# The unbounded proof: constrained Horn clauses.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofResult:
    status: str  # "sat": Inv exists, no fault is reachable; "unsat": a fault is reachable
    slots: int
    invariant: str | None  # the model of Inv, over the state variables @s
    formula: Any  # the same as a Z3 term (None without a model)
    seconds: float

    @property
    def proved(self) -> bool:
        return self.status == "sat"

    def __str__(self) -> str:
        head = {"sat": "proved", "unsat": "refuted: a fault is reachable"}.get(self.status, self.status)
        inv = f"\nInv(s) = {self.invariant}" if self.invariant is not None else ""
        return f"{head} for {self.slots} slots ({self.seconds:.2f}s){inv}"


def horn_clauses(n: int, tables: Tables = TABLES, codec: Codec = ENUM) -> tuple[Any, list[Any]]:
    """``Inv`` and its clauses: init; a fault-free transition keeps Inv; no transition from Inv faults."""
    tpl = _template(codec, tables, n)
    terms = frame_terms(tpl.s)
    inv = z3.Function("Inv", *[t.sort() for t in terms], z3.BoolSort())
    variables = terms + tpl.e.variables()
    t = tpl.t
    init = inv(*frame_terms(frame_value(codec, initial_state(n))))
    keep = z3.ForAll(variables, z3.Implies(z3.And(inv(*terms), t.guard, z3.Not(t.fault)), inv(*frame_terms(t.nxt))))
    bad = z3.ForAll(variables, z3.Implies(z3.And(inv(*terms), t.guard, t.fault), z3.BoolVal(False)))
    return inv, [init, keep, bad]


def prove(n: int, tables: Tables = TABLES, *, codec: Codec = ENUM) -> ProofResult:
    """Ask Z3's Horn engine for an inductive invariant ``Inv`` that excludes every fault."""
    start = time.perf_counter()
    inv, clauses = horn_clauses(n, tables, codec)
    solver = z3.SolverFor("HORN")
    solver.add(*clauses)
    status = str(solver.check())
    formula = None
    if status == "sat":
        formula = z3.simplify(solver.model().eval(inv(*frame_terms(_template(codec, tables, n).s))))
    text = None if formula is None else str(formula)
    return ProofResult(status, n, text, formula, time.perf_counter() - start)


def check_invariant(formula: Any, n: int, tables: Tables = TABLES, *, codec: Codec = ENUM) -> bool:
    """Check, with a plain solver, that ``formula`` (over the variables @s) is inductive and safe."""
    tpl = _template(codec, tables, n)
    init = list(zip(frame_terms(tpl.s), frame_terms(frame_value(codec, initial_state(n)))))
    after = list(zip(frame_terms(tpl.s), frame_terms(tpl.t.nxt)))
    holds = z3.And(formula, frame_valid(codec, tpl.s))
    obligations = [
        z3.Not(z3.substitute(formula, *init)),
        z3.And(holds, tpl.t.guard, z3.Not(tpl.t.fault), z3.Not(z3.substitute(formula, *after))),
        z3.And(holds, tpl.t.guard, tpl.t.fault),
    ]
    for obligation in obligations:
        solver = z3.Solver()
        solver.add(obligation)
        if _check(solver):
            return False
    return True


# ---------------------------------------------------------------------------
# Enumeration by blocking clauses.
# ---------------------------------------------------------------------------


def _block(solver: Any, model: Any, variables: Sequence[Any]) -> None:
    solver.add(z3.Or([v != model.eval(v, model_completion=True) for v in variables]))


def enumerate_traces(length: int, n: int, tables: Tables = TABLES, *, codec: Codec = BITVEC) -> list[tuple[AEvent, ...]]:
    """Every trace of exactly ``length`` events (slots not renamed), one model at a time."""
    unroll = _Unrolling(codec, tables, n, "QF_FD")
    for d in range(length):
        step = unroll.extend()
        if d < length - 1:
            unroll.solver.add(z3.Not(step.fault))  # a faulty state has no successors
    variables = [v for e in unroll.events for v in e.variables()]
    out: list[tuple[AEvent, ...]] = []
    while _check(unroll.solver):
        model = unroll.solver.model()
        out.append(unroll.trace(model))
        _block(unroll.solver, model, variables)
    return out


def successors(state: AState, tables: Tables = TABLES, *, codec: Codec = BITVEC) -> list[tuple[AEvent, AState]]:
    """The successors of one state according to Z3 (to compare with ``abstract.successors``)."""
    n = len(state.slots)
    if state.faults:
        return []
    solver = z3.SolverFor("QF_FD")
    event = event_vars(codec, n, "x")
    step = instantiate(codec, tables, frame_value(codec, state), event)
    solver.add(step.guard)
    out: list[tuple[AEvent, AState]] = []
    while _check(solver):
        model = solver.model()
        faults = frozenset(f for f, hit in step.faults.items() if _read(codec, model, hit, None))
        out.append((decode_event(codec, model, event), decode_state(codec, model, step.nxt, faults)))
        _block(solver, model, event.variables())
    return out


# ---------------------------------------------------------------------------
# Reading an invariant, and the report of ``ctxcontract prove``.
# ---------------------------------------------------------------------------


def _atom(e: Any) -> tuple[str, str] | None:
    """``var = value`` as ``(var, value)``, in the model's words (``status0``, ``open``)."""

    def word(t: Any) -> str:
        text = str(t).removesuffix("@s")
        return text.split(".", 1)[1].lower() if "." in text else text

    if z3.is_app_of(e, z3.Z3_OP_DT_IS):
        return word(e.arg(0)), word(e.decl().params()[0])
    if z3.is_eq(e) and z3.is_const(e.arg(1)) and not str(e.arg(1)).endswith("@s"):
        return word(e.arg(0)), word(e.arg(1))
    if z3.is_eq(e) and z3.is_const(e.arg(0)) and not str(e.arg(0)).endswith("@s"):
        return word(e.arg(1)), word(e.arg(0))
    if z3.is_bool(e) and z3.is_const(e) and not z3.is_true(e) and not z3.is_false(e):
        return word(e), "true"
    return None


def _var_key(var: str) -> tuple[str, str]:
    stem = var.rstrip("0123456789")
    return var[len(stem) :], stem


def _side(atoms: Sequence[tuple[str, str]], joiner: str) -> str:
    by_var: dict[str, list[str]] = {}
    for var, value in sorted(atoms, key=lambda a: _var_key(a[0])):
        by_var.setdefault(var, []).append(value)
    parts = []
    for var, values in by_var.items():
        if values == ["true"]:
            parts.append(var)
        elif len(values) == 1:
            parts.append(f"{var} = {values[0]}")
        else:
            parts.append(f"{var} in {{{', '.join(values)}}}")
    return joiner.join(parts)


def render_clause(clause: Any) -> str:
    """One clause of an invariant as ``premises -> conclusions`` over phase/status/where names."""
    literals = list(clause.children()) if z3.is_or(clause) else [clause]
    premises: list[tuple[str, str]] = []
    conclusions: list[tuple[str, str]] = []
    for lit in literals:
        negative = z3.is_not(lit)
        atom = _atom(lit.arg(0) if negative else lit)
        if atom is None:
            return str(clause)
        (premises if negative else conclusions).append(atom)
    if not premises:
        return _side(conclusions, " or ")
    if not conclusions:
        return f"not ({_side(premises, ' and ')})"
    return f"{_side(premises, ' and ')} -> {_side(conclusions, ' or ')}"


def render_invariant(formula: Any) -> list[str]:
    """An invariant as one readable clause per line (the conjuncts of ``formula``)."""
    clauses = list(formula.children()) if z3.is_and(formula) else [formula]
    return sorted(render_clause(c) for c in clauses)


def render_trace(trace: Sequence[AEvent], n: int, tables: Tables = TABLES) -> list[str]:
    """One abstract event per line, with the abstract state it leads to."""
    states = run(trace, n, tables)
    width = max((len(str(e)) for e in trace), default=0)
    lines = [f"    {'':{width}}     {states[0]}"]
    lines += [f"{i:3}. {str(e):{width}}  -> {s}" for i, (e, s) in enumerate(zip(trace, states[1:]), 1)]
    return lines


@dataclass(frozen=True)
class ProofReport:
    """What ``ctxcontract prove`` prints: the bounded check, the Horn proof and the per-slot invariant."""

    slots: int
    depth: int
    tables: Tables
    bmc: BmcResult
    proof: ProofResult
    rechecked: bool | None  # the Horn invariant re-checked inductive and safe (None: no invariant)
    recheck_seconds: float
    slot_inv: SlotInvariant

    @property
    def proved(self) -> bool:
        return not self.bmc.found and self.proof.proved and bool(self.rechecked)

    def render(self) -> str:
        n, k = self.slots, self.depth
        out = [f"Abstract session contract, {n} call slots (docs/proof.md says what this covers)", ""]
        b = self.bmc
        lemma = f"; {b.lemma_seconds:.2f}s of it for the per-slot lemma" if b.lemma_seconds else ""
        out.append(f"Bounded model checking, every trace of <= {k} events: {b.seconds:.2f}s{lemma}")
        if b.trace is None:
            out.append(f"  no violation within {k} events")
        else:
            faults = ", ".join(f.value.upper() for f in b.faults)
            out.append(f"  VIOLATION {faults} after {len(b.trace)} events (a shortest trace):")
            out += ["  " + line for line in render_trace(b.trace, n, self.tables)]
        out.append("")
        p = self.proof
        verdict = {"sat": "proved: no fault is reachable, at any depth", "unsat": "refuted: a fault is reachable"}
        out.append(f"Unbounded proof, constrained Horn clauses (Z3 HORN engine): {p.seconds:.2f}s")
        out.append(f"  {verdict.get(p.status, p.status)}")
        if p.formula is not None:
            ok = "yes" if self.rechecked else "NO"
            out.append(f"  inductive invariant Inv(s) found by Z3, re-checked inductive and safe: {ok} ({self.recheck_seconds:.2f}s)")
            out.append("  Inv(s) = the conjunction of:")
            out += [f"    {line}" for line in render_invariant(p.formula)]
        out.append("")
        si = self.slot_inv
        state = "safe: it alone proves the contract" if si.safe else "not safe"
        out.append(f"Per-slot invariant (every slot shows one of {len(si.views)} views; {state}): {si.seconds:.2f}s")
        out += [f"  {line}" for line in _render_views(si.views)]
        out.append("")
        out.append(f"Result: {'proved' if self.proved else 'NOT proved'} for {n} slots")
        return "\n".join(out)


def _render_views(views: Iterable[SlotView]) -> list[str]:
    """Views grouped by the shared contexts ``phase[+queued][+exchange]`` a slot's ``status@where`` shows in."""
    groups: dict[str, list[str]] = {}
    for phase, queued, exchange, status, where in sorted(views, key=_all_views().index):
        ctx = phase.value + ("+queued" if queued else "") + ("+exchange" if exchange else "")
        groups.setdefault(f"{status.value}@{where.value}", []).append(ctx)
    by_contexts: dict[tuple[str, ...], list[str]] = {}
    for slot, contexts in groups.items():
        by_contexts.setdefault(tuple(contexts), []).append(slot)
    return [f"{', '.join(slots)}\n    in {' '.join(contexts)}" for contexts, slots in by_contexts.items()]


def prove_report(slots: int = 4, depth: int = 30, tables: Tables = TABLES) -> ProofReport:
    """Run the bounded check, the Horn proof (and re-check its invariant) and the per-slot invariant."""
    bounded = bmc(depth, slots, tables)
    proof = prove(slots, tables)
    start = time.perf_counter()
    rechecked = None if proof.formula is None else check_invariant(proof.formula, slots, tables)
    recheck_seconds = time.perf_counter() - start
    return ProofReport(slots, depth, tables, bounded, proof, rechecked, recheck_seconds, slot_invariant(slots, tables))


def main(argv: Sequence[str] = ()) -> int:
    """``python -m ctxspec.z3model [DEPTH] [SLOTS]``: run BMC and the proof, print the report."""
    depth = int(argv[0]) if argv else 30
    n = int(argv[1]) if len(argv) > 1 else 4
    report = prove_report(n, depth)
    print(report.render())
    return 0 if report.proved else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
