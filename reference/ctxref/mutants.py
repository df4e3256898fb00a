"""Mutants: small, deliberately broken projectors, one per real bug class.

Each mutant changes one decision of the reference projector, the way a real
runtime got it wrong.  The test suite must kill every one of them with the
CI profile (``tests/test_mutants.py``) and keeps the shrunk counterexample
of each in ``tests/regressions/``.  A mutant that survives is a hole in the
model.

``MUTANTS[name]`` gives the projector class, what it breaks, and the rules
expected to catch it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ctxspec.events import Compaction, Event, StepEnd, ToolResult
from ctxspec.messages import Message, ToolMessage
from ctxspec.state import CallInput, CallStatus, Reason

from .projector import Projector, _Call, _Entry, _Exchange, fed


class DropLastStepResult(Projector):
    """Kimi Code 0.20.1 (TodoList:3): a result logged after its step ended is never sent."""

    def __init__(self) -> None:
        super().__init__()
        self._step_over = False
        self._lost: set[int] = set()

    def feed(self, event: Event) -> None:
        if isinstance(event, StepEnd):
            self._step_over = True
        elif event.type == "step.begin":
            self._step_over = False
        if isinstance(event, ToolResult) and self._step_over and self._pending is not None:
            hit = [c for c in self._pending.calls if c.orig == event.call_id and c.status is CallStatus.OPEN]
            if hit:
                self._lost.add(id(hit[0]))
        super().feed(event)

    def _closure(self, ex: _Exchange, reason: Reason, line: int) -> list[_Entry]:
        keep = {c.sent for c in ex.calls if id(c) not in self._lost}
        return [e for e in super()._closure(ex, reason, line) if not isinstance(e.message, ToolMessage) or e.message.call_id in keep]


class SteerInsideBlock(Projector):
    """User input typed while calls run lands between the calls and their results."""

    def __init__(self) -> None:
        super().__init__()
        self._inside: list[_Entry] = []

    def _place(self, entry: _Entry) -> None:
        if self._pending is not None:
            self._inside.append(entry)
        else:
            self._commit(entry)

    def _closure(self, ex: _Exchange, reason: Reason, line: int) -> list[_Entry]:
        entries = super()._closure(ex, reason, line)
        return entries[:1] + list(self._inside) + entries[1:]

    def _flush(self, ex: _Exchange, line: int) -> None:
        super()._flush(ex, line)
        self._inside = []


class NoClosureOnResume(Projector):
    """After a crash and resume, calls that were running stay without a result."""

    def _close(self, call_input: CallInput, line: int, *, commit: bool) -> None:
        if call_input is CallInput.CRASH and self._pending is not None:
            ex, self._pending = self._pending, None
            for c in ex.calls:
                c.status = CallStatus.CLOSED if c.status is CallStatus.OPEN else c.status
            for entry in super()._closure(ex, Reason.LOST_AT_CRASH, line):
                if not (isinstance(entry.message, ToolMessage) and entry.message.synthetic):
                    self._commit(entry)
            return
        super()._close(call_input, line, commit=commit)


class PromptDeferredForever(Projector):
    """User input waits behind calls that never close: it is never sent."""

    def _close(self, call_input: CallInput, line: int, *, commit: bool) -> None:
        if call_input is CallInput.PROJECT:
            return
        super()._close(call_input, line, commit=commit)

    def messages(self) -> list[Message]:
        pending, self._pending = self._pending, None
        try:
            return super().messages()
        finally:
            self._pending = pending


class CompactionSplitsExchange(Projector):
    """Compaction cuts at the runtime's log position, even inside an exchange."""

    def _compact(self, event: Compaction, line: int) -> None:
        kept = [e for e in self._out[self._start :] if e.line > event.upto]
        super()._compact(event, line)
        self._out, self._start = kept, 0
        self._prompts = [i for i, e in enumerate(kept) if e.prompt]


class LateResultAfterCompactionDropped(Projector):
    """A result whose call was summarized is silently dropped."""

    def _result(self, event: ToolResult, line: int) -> None:
        call = self._route(event.call_id)
        if call is not None and call.status is CallStatus.SUMMARIZED:
            return
        super()._result(event, line)


class FirstParallelResultOnlyOnResume(Projector):
    """On resume, only the first of several parallel results survives."""

    def _close(self, call_input: CallInput, line: int, *, commit: bool) -> None:
        if call_input is CallInput.CRASH and self._pending is not None:
            answered = [c for c in self._pending.calls if c.status is CallStatus.ANSWERED]
            for c in answered[1:]:
                c.status, c.reason, c.output = CallStatus.OPEN, None, None
        super()._close(call_input, line, commit=commit)


class DuplicateIdKept(Projector):
    """A call id the model reuses is sent twice."""

    def _rename(self, orig: str, line: int) -> str:
        return orig


class OrphanKeptAfterTrim(Projector):
    """After undo or compaction, a result for a trimmed call is sent as a tool message."""

    def _result(self, event: ToolResult, line: int) -> None:
        call = self._route(event.call_id)
        if call is not None and call.status in (CallStatus.GONE, CallStatus.SUMMARIZED):
            self._place(_Entry(ToolMessage(call_id=call.sent, content=event.output), line, line))
            return
        super()._result(event, line)


class NondeterministicSyntheticIds(Projector):
    """Synthetic results and renamed ids carry a random token."""

    def _rename(self, orig: str, line: int) -> str:
        return orig if orig not in self._used else f"{orig}-{uuid.uuid4().hex[:8]}"

    def _synthetic(self, call: _Call, reason: Reason) -> ToolMessage:
        msg = super()._synthetic(call, reason)
        return ToolMessage(call_id=msg.call_id, content=f"{msg.content} [{uuid.uuid4().hex[:8]}]", is_error=True, synthetic=True)


class LateResultMovedUp(Projector):
    """A late result replaces the synthetic result in history instead of becoming a note."""

    def _result(self, event: ToolResult, line: int) -> None:
        target = self._route(event.call_id)
        if target is not None and target.status is CallStatus.CLOSED:
            for i in range(len(self._out) - 1, self._start - 1, -1):
                m = self._out[i].message
                if isinstance(m, ToolMessage) and m.call_id == target.sent:
                    self._out[i].message = ToolMessage(call_id=m.call_id, content=event.output, is_error=event.is_error)
                    return
        super()._result(event, line)


class HalfCallSent(Projector):
    """A call cut mid-arguments by a broken stream is sent anyway."""

    def _declare_inputs(self, n_calls: int, complete: bool) -> tuple[CallInput, ...]:
        return super()._declare_inputs(n_calls, True) if complete else (CallInput.DECLARE_CUT,) * n_calls


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    cls: type[Projector]
    breaks: str
    rules: frozenset[str]  # the rules expected to catch it

    def project(self, log: Iterable[Event]) -> list[Message]:
        return fed(log, self.cls).messages()


def _m(name: str, cls: type[Projector], rules: str) -> Mutant:
    doc = (cls.__doc__ or "").strip()
    return Mutant(name, cls, doc, frozenset(rules.split()))


MUTANTS: Final[dict[str, Mutant]] = {
    m.name: m
    for m in (
        _m("drop_last_step_result", DropLastStepResult, "C1 C4"),
        _m("steer_inside_block", SteerInsideBlock, "C1 C6"),
        _m("no_closure_on_resume", NoClosureOnResume, "C1 C5"),
        _m("prompt_deferred_forever", PromptDeferredForever, "C8"),
        _m("compaction_splits_exchange", CompactionSplitsExchange, "C2 C7 C8"),
        _m("late_result_after_compaction_dropped", LateResultAfterCompactionDropped, "C8"),
        _m("first_parallel_result_only_on_resume", FirstParallelResultOnlyOnResume, "C4"),
        _m("duplicate_id_kept", DuplicateIdKept, "C3"),
        _m("orphan_result_kept_after_trim", OrphanKeptAfterTrim, "C2"),
        _m("nondeterministic_synthetic_ids", NondeterministicSyntheticIds, "C11"),
        _m("late_result_moved_up", LateResultMovedUp, "C9 C5 C8"),
        _m("half_call_sent", HalfCallSent, "C10"),
    )
}
