"""Refinement: the reference projector's steps are steps of the abstract model.

The Z3 proof (``ctxspec.z3model``) is about the abstract session of
``ctxspec.abstract``.  It says something about this projector only if every
concrete step the projector takes maps to an abstract step.  This module
checks that, event by event:

* the *abstraction function* maps the projector's state to an abstract
  state: the runtime's phase (from ``ctxspec.state.SessionState``), and for
  each of N slots the status of the call it holds (the projector's own
  ``_Call.status``), where that call is (in the open exchange, in the
  context, summarized/undone/cleared, or nowhere for a dropped half call), and
  whether input is queued behind the open exchange;
* after each event, the abstract state of the projector must be a successor
  of the abstract state before it, by a transition that breaks no rule of
  the abstract contract.

Calls are given slots as the abstraction does: a new call takes the lowest
slot that is free or holds a call that can never be open again.  The stateful
checker runs this on every step it takes (``tests/test_refinement.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ctxspec.abstract import TABLES, AState, Slot, Where, initial_state, settled_statuses, successors
from ctxspec.events import Event, SessionMeta
from ctxspec.state import CallStatus, SessionState

from .projector import Projector, _Call


def abstract_state(projector: Projector, phase: SessionState, slots: Sequence[_Call | None]) -> AState:
    """The abstraction function: the projector's state seen through ``slots``."""
    pending = projector._pending
    in_exchange = {id(c) for c in pending.calls} if pending is not None else set()
    out: list[Slot] = []
    for call in slots:
        if call is None:
            out.append(Slot())
            continue
        if id(call) in in_exchange:
            where = Where.EXCHANGE
        elif call.status in (CallStatus.SUMMARIZED, CallStatus.GONE):
            where = Where.OUT
        elif call.status is CallStatus.DROPPED:
            where = Where.NOWHERE
        else:
            where = Where.CONTEXT
        out.append(Slot(call.status, where))
    queued = pending is not None and bool(pending.queued)
    return AState(phase.phase, tuple(out), queued)


def _tracked(cls: type[Projector]) -> type[Projector]:
    """``cls`` that also records every call it declares, in order, in ``declared``."""

    def _declared(self: Projector, call: _Call) -> None:
        cls._declared(self, call)
        self.__dict__.setdefault("declared", []).append(call)

    return type(f"Tracked{cls.__name__}", (cls,), {"_declared": _declared})


class Refinement:
    """Feed events; each returns the refinement failures it caused (empty: fine)."""

    def __init__(self, slots: int = 3, projector: type[Projector] = Projector) -> None:
        self.projector = _tracked(projector)()
        self.phase = SessionState()
        self.slots: list[_Call | None] = [None] * slots
        self.abstract = initial_state(slots)

    def _declared(self) -> list[_Call]:
        calls: list[_Call] = self.projector.__dict__.get("declared", [])
        return calls

    def feed(self, event: Event) -> list[str]:
        before = self.abstract
        mark = len(self._declared())
        self.projector.feed(event)
        self.phase.feed(event)
        if isinstance(event, SessionMeta):
            return []
        failures = self._assign(self._declared()[mark:])
        after = abstract_state(self.projector, self.phase, self.slots)
        self.abstract = after
        if failures:
            return failures
        if after not in {s for _, s in successors(before, TABLES)}:
            faulty = [e for e, s in successors(before, TABLES) if s.faults and s.phase is after.phase]
            hint = f"; abstract steps from there that break a rule: {', '.join(map(str, faulty[:3]))}" if faulty else ""
            return [f"{event.type} moves the projector from {before} to {after}, which is no abstract step{hint}"]
        return []

    def _assign(self, new: list[_Call]) -> list[str]:
        settled = settled_statuses(TABLES)
        for call in new:
            free = [
                i
                for i, held in enumerate(self.slots)
                if held is None or (held.status in settled and not self._in_exchange(held))
            ]
            if not free:
                return [f"more calls in flight than the {len(self.slots)} slots of the abstraction"]
            self.slots[free[0]] = call
        return []

    def _in_exchange(self, call: _Call) -> bool:
        pending = self.projector._pending
        return pending is not None and any(c is call for c in pending.calls)
