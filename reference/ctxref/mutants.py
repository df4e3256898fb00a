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

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Final

from ctxspec.events import Compaction, Event, StepEnd, ToolResult
from ctxspec.messages import AssistantMessage, Message, ToolMessage
from ctxspec.policy import Policy, policy_from_mapping
from ctxspec.state import CallInput, CallStatus, Reason

from .projector import Projector, _Call, _Entry, _Exchange, fed, project


class DropLastStepResult(Projector):
    """Kimi Code 0.20.1 (TodoList:3): a result logged after its step ended is never sent."""

    def __init__(self, *, policy: Policy | None = None) -> None:
        super().__init__(policy=policy)
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

    def __init__(self, *, policy: Policy | None = None) -> None:
        super().__init__(policy=policy)
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

    def following(self, policy: Policy) -> tuple[Callable[[Iterable[Event]], list[Message]], Callable[[], Projector]]:
        """The mutant following ``policy`` where it is not broken: batch and incremental."""
        return (lambda log: fed(log, self.cls, policy).messages()), (lambda: self.cls(policy=policy))


def _m(name: str, cls: type[Projector], rules: str) -> Mutant:
    doc = (cls.__doc__ or "").strip()
    return Mutant(name, cls, doc, frozenset(rules.split()))


MUTANTS: Final[dict[str, Mutant]] = {
    m.name: m
    for m in (
        _m("drop_last_step_result", DropLastStepResult, "C1 C4"),
        _m("steer_inside_block", SteerInsideBlock, "C1 C6"),
        _m("no_closure_on_resume", NoClosureOnResume, "C1 C5"),
        _m("prompt_deferred_forever", PromptDeferredForever, "C5 C8"),  # holding the exchange back too: C5 policy
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


# ---------------------------------------------------------------------------
# Knob mutants: a projector that breaks one knob of a declared policy.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnobMutant:
    """A projector that breaks ``knob`` of the preset ``declared``; checked under that preset it must fail.

    Most follow the declared preset with that one knob set otherwise (the
    reference projector follows any policy); ``call_ids`` and ``arguments``
    have no other safe value to follow, so their mutants change the sent
    messages by hand.
    """

    knob: str
    declared: str
    breaks: str
    project: Callable[[Iterable[Event]], list[Message]]


def _following(declared: str, **knob: str) -> Callable[[Iterable[Event]], list[Message]]:
    (name, value), = knob.items()
    return partial(project, policy=policy_from_mapping({"base": declared, name: value}, name=f"{declared} with {name} = {value}"))


def _renames_every_id(log: Iterable[Event]) -> list[Message]:
    out: list[Message] = []
    for m in project(log):
        if isinstance(m, AssistantMessage) and m.calls:
            m = replace(m, calls=tuple(replace(c, id=f"fn_{c.id}") for c in m.calls))
        elif isinstance(m, ToolMessage):
            m = replace(m, call_id=f"fn_{m.call_id}")
        out.append(m)
    return out


def _compact_json(args: str) -> str:
    try:
        return json.dumps(json.loads(args), separators=(",", ":"))
    except ValueError:
        return args


def _reserialises_arguments(log: Iterable[Event]) -> list[Message]:
    return [replace(m, calls=tuple(replace(c, args=_compact_json(c.args)) for c in m.calls)) if isinstance(m, AssistantMessage) else m for m in project(log)]


#: One mutant per knob, each checked under the preset it names.
KNOB_MUTANTS: Final[dict[str, KnobMutant]] = {
    m.knob: m
    for m in (
        KnobMutant("unanswered", "openai-agents", "closes a call without a result, which the policy drops", _following("openai-agents", unanswered="synthesize")),
        KnobMutant("synthetic_text", "codex", "closes calls in the reference's words, not 'aborted'", _following("codex", synthetic_text="reason")),
        KnobMutant("block_order", "claude-code", "puts results in call order, not arrival order", _following("claude-code", block_order="call")),
        KnobMutant("late_result", "codex", "sends a late result as a note, which the policy drops", _following("codex", late_result="note")),
        KnobMutant("user_messages", "claude-code", "keeps user messages in a row apart, which the policy merges", _following("claude-code", user_messages="separate")),
        KnobMutant("call_ids", "reference", "sends every call under a new id, the first use too", _renames_every_id),
        KnobMutant("compaction", "reference", "keeps summarized user input before the summary", _following("reference", compaction="user-then-summary")),
        KnobMutant("cut_stream", "claude-code", "sends and closes a cut reply's calls, which the policy drops", _following("claude-code", cut_stream="send-closed")),
        KnobMutant("arguments", "reference", "re-serialises argument JSON ({\"n\":1} for {\"n\": 1})", _reserialises_arguments),
    )
}
