"""The abstract session in Z3: bounded model checking and an inductive proof.

What this module owns: the Z3 encoding of the abstract session of
``abstract.py`` -- two encodings of its finite domains (bit-vectors, so that
bounded checks run in Z3's incremental ``QF_FD`` solver; enumeration sorts,
so that the Horn engine's invariant reads as the model's own words); one
symbolic transition relation per (encoding, tables, N); and its uses:
:func:`bmc` (bounded model checking with one assumption literal per depth,
shortest counterexample first), :func:`prove` (constrained Horn clauses over
an uninterpreted invariant ``Inv``, solved by Z3's ``HORN`` engine, with
:func:`check_invariant` to re-check the invariant it finds),
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
        return z3.ULT(term, z3.BitVecVal(len(DOMAINS[domain]), self._width(domain)))


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
# Bounded model checking.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BmcResult:
    depth: int
    slots: int
    trace: tuple[AEvent, ...] | None  # the shortest trace to a fault, if any
    faults: tuple[Fault, ...]
    seconds: float

    @property
    def found(self) -> bool:
        return self.trace is not None

    def __str__(self) -> str:
        if self.trace is None:
            return f"no violation within {self.depth} events ({self.slots} slots, {self.seconds:.2f}s)"
        events = " ".join(map(str, self.trace))
        faults = ",".join(f.value for f in self.faults)
        return f"{faults} after {len(self.trace)} events ({self.slots} slots, {self.seconds:.2f}s): {events}"


def bmc(depth: int, n: int, tables: Tables = TABLES, *, codec: Codec = BITVEC, logic: str = "QF_FD") -> BmcResult:
    """Search every trace of up to ``depth`` events for a fault, shortest first.

    Depth ``d`` is asked under the assumption literal ``bad@d`` (which implies
    a fault at event ``d``), so one incremental solver serves every depth; a
    depth found safe keeps its fault negated as a lemma.  The trace found is
    replayed on ``abstract.successors`` before it is returned.
    """
    start = time.perf_counter()
    unroll = _Unrolling(codec, tables, n, logic)
    for d in range(depth):
        step = unroll.extend()
        bad = z3.Bool(f"bad@{d}")
        unroll.solver.add(z3.Implies(bad, step.fault))
        if _check(unroll.solver, bad):
            trace = unroll.trace(unroll.solver.model())
            last = run(trace, n, tables)[-1]
            assert last.faults, f"Z3 and the successor function disagree on {trace}"
            faults = tuple(f for f in Fault if f in last.faults)
            return BmcResult(depth, n, trace, faults, time.perf_counter() - start)
        unroll.solver.add(z3.Not(step.fault))
    return BmcResult(depth, n, None, (), time.perf_counter() - start)


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


def main(argv: Sequence[str] = ()) -> int:
    """``python -m ctxspec.z3model [DEPTH] [SLOTS]``: run BMC and the proof, print both."""
    depth = int(argv[0]) if argv else 12
    n = int(argv[1]) if len(argv) > 1 else 2
    print(bmc(depth, n))
    print(prove(n))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
