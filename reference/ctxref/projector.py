"""The reference projector: a session log in, the provider message list out.

It is one implementation of the model in ``ctxspec``: it reads the call table
and the routing rule from ``ctxspec.state`` and shares no code with the
ledger the contract checks it against.

* :class:`Projector` is incremental: ``feed`` one event at a time (amortized
  O(1) per event, whatever the session's length; compaction, undo and clear
  cost what they remove), ``messages()`` returns the request a ``step.begin``
  would build now.
* :func:`project` is the batch form: O(n) in the log's length.
* Every repair is reported with the log line it came from (``repairs``), and
  every log line's fate can be asked for (``fates()``).

Policies (the contract leaves them to the projector; these are ours):

* Synthetic results say why, in words rule C5 recognises (:data:`SYNTHETIC`).
* A reused call id is renamed ``<id>#<n>`` for its n-th use (plus ``'`` until
  unique); the first use of an id keeps it.  No line numbers: removing an idle
  ``resume`` must not change any id (rule C11).
* A late result becomes a user note: ``[late tool result] ...`` followed by
  the output verbatim.
* A summary is the first non-system message: ``[summary of the earlier
  conversation]`` followed by the summary verbatim.

Those are the choices of the ``reference`` policy.  Given another declared
policy (``ctxspec.policy``), it follows that one instead: it drops unanswered
or cut-stream calls, orders a block by arrival, drops late results, merges
adjacent user messages or keeps the summarized user input before the summary,
as the policy says.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ctxspec.events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    SessionMeta,
    ToolCall,
    ToolResult,
    TurnPrompt,
    TurnSteer,
    Undo,
    events_from_dicts,
)
from ctxspec.ledger import Fate
from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage, messages_to_openai
from ctxspec.policy import REFERENCE, BlockOrder, CompactionOutput, CutStream, LateResult, Policy, SyntheticText, Unanswered, UserMessages
from ctxspec.state import (
    CLOSING_INPUTS,
    USER_INPUT_KINDS,
    CallInput,
    CallStatus,
    Effect,
    Reason,
    call_step,
    declare_inputs,
)

SYNTHETIC: Final[dict[Reason, str]] = {
    Reason.CANCELLED: "Tool call cancelled: the user cancelled the turn before it returned.",
    Reason.LOST_AT_CRASH: "Tool call lost at crash: the runtime restarted before it returned.",
    Reason.STREAM_CUT: "Tool call not run: the model's stream was cut before the reply was complete.",
    Reason.NEVER_ANSWERED: "Tool call never answered: no result had arrived when the next request was built.",
}
SUMMARY_HEADER: Final = "[summary of the earlier conversation]\n"


class RepairKind(enum.Enum):
    SYNTHETIC_RESULT = "synthetic result"
    LATE_NOTE = "late result turned into a note"
    ORPHAN_DROPPED = "orphan result dropped"
    UNDONE_RESULT_DROPPED = "result of an undone call dropped"
    ID_RENAMED = "call id renamed"
    HALF_CALL_DROPPED = "half-streamed call dropped"
    EMPTY_REPLY_DROPPED = "empty reply dropped"
    EXCHANGE_KEPT_WHOLE = "compaction cut moved to keep an exchange whole"
    INPUT_HELD = "user input held until the exchange closed"
    RESULTS_REORDERED = "results put in call order"
    CALL_DROPPED = "call without a result dropped"
    LATE_DROPPED = "late result dropped"


@dataclass(frozen=True, slots=True)
class Repair:
    """One place where the reference projector had to repair the log.

    ``line`` is where (the closing event for a synthetic result); ``call`` is
    the call's id as sent, ``to`` the new id of a renamed call, ``refs``
    related lines: the call's declaration (synthetic result), the line that
    closed it (late result), the line that closed the exchange (held input),
    the result lines in call order (reordered results).
    """

    kind: RepairKind
    line: int
    detail: str
    call: str = ""
    to: str = ""
    refs: tuple[int, ...] = ()
    #: The call's place among its reply's calls (a repair about one call), else -1:
    #: with it a format that writes each call as its own record names that record.
    index: int = -1

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind.value}: {self.detail}"


@dataclass(eq=False, slots=True)
class _Call:
    line: int
    orig: str
    sent: str
    name: str
    args: str
    status: CallStatus = CallStatus.FREE
    output: str | None = None
    is_error: bool = False
    result_line: int | None = None
    reason: Reason | None = None
    closed_at: int = 0
    uses: int = 0  # this is the n-th call declared with ``orig``
    index: int = 0  # its place among its reply's calls


@dataclass(eq=False, slots=True)
class _Entry:
    """One message of the context, with where it came from."""

    message: Message
    line: int  # origin
    emitted: int
    prompt: bool = False
    calls: tuple[_Call, ...] = ()  # on the assistant entry of an exchange
    user_input: bool = False  # a prompt, steer or notification
    hidden: bool = False  # an exchange whose calls the policy all dropped, with no text: sends nothing


@dataclass(eq=False, slots=True)
class _Exchange:
    line: int
    text: str
    calls: list[_Call]
    queued: list[_Entry] = field(default_factory=list)

    def open(self) -> bool:
        return any(c.status is CallStatus.OPEN for c in self.calls)


class Projector:
    """The incremental reference projector."""

    def __init__(self, *, track_fates: bool = True, policy: Policy | None = None) -> None:
        """``track_fates=False`` keeps memory flat on huge logs (no :meth:`fates`)."""
        self.policy = policy if policy is not None else REFERENCE
        self._kept: list[_Entry] = []  # summarized user input a policy keeps before the summary
        self.line = 0
        self._track = track_fates
        self.repairs: list[Repair] = []
        self._system: Message | None = None
        self._summary: _Entry | None = None
        self._out: list[_Entry] = []
        self._start = 0  # entries before it were summarized
        self._pending: _Exchange | None = None
        # Routing (state.route_result, kept O(1)): the open calls per id, oldest
        # first (only the pending exchange has open calls), and the latest call.
        self._open: dict[str, list[_Call]] = {}
        self._latest: dict[str, _Call] = {}  # its ``uses`` counts the uses of the id
        self._used: set[str] = set()
        self._prompts: list[int] = []  # indices into _out of prompt entries
        self._cut = 0
        self._fates: list[Fate] = []

    # -- the public surface -------------------------------------------------

    def feed(self, event: Event) -> None:
        self.line += 1
        if self._track:
            self._fates.append(Fate.CONTROL)
        line = self.line
        if isinstance(event, SessionMeta):
            self._system = SystemMessage(text=event.system) if event.system else None
            if event.system:
                self._fate(line, Fate.IN_CONTEXT)
        elif event.type in USER_INPUT_KINDS:
            assert isinstance(event, (TurnPrompt, TurnSteer, Notification))
            self._fate(line, Fate.IN_CONTEXT)
            self._place(_Entry(UserMessage(text=event.text), line, line, prompt=isinstance(event, TurnPrompt), user_input=True))
        elif isinstance(event, Assistant):
            self._assistant(event, line)
        elif isinstance(event, ToolResult):
            self._result(event, line)
        elif isinstance(event, Compaction):
            self._compact(event, line)
        elif isinstance(event, Undo):
            self._undo(event.count, line)
        elif isinstance(event, Clear):
            self._clear(line)
        elif event.type in CLOSING_INPUTS:
            self._close(CLOSING_INPUTS[event.type], line, commit=True)

    def messages(self) -> list[Message]:
        """The request a ``step.begin`` would send now."""
        return [m for m, _line in self.sourced_messages()]

    def sourced_messages(self) -> list[tuple[Message, int]]:
        """:meth:`messages`, each with the log line it comes from (the closing
        event for a synthetic result; 1 for the system prompt)."""
        out: list[tuple[Message, int]] = []
        if self._system is not None:
            out.append((self._system, 1))
        if self._summary is not None:
            out.extend((e.message, e.line) for e in self._kept)
            out.append((self._summary.message, self._summary.line))
        out.extend((e.message, e.line) for e in self._out[self._start :] if not e.hidden)
        if self._pending is not None:
            out.extend((e.message, e.line) for e in self._closure(self._pending, Reason.NEVER_ANSWERED, self.line) if not e.hidden)
        if self.policy.user_messages is UserMessages.MERGED:
            out = _merge_users(out)
        return out

    def fates(self) -> dict[int, Fate]:
        """The fate of every log line so far."""
        if not self._track:
            raise ValueError("this projector does not track fates")
        return {i + 1: f for i, f in enumerate(self._fates)}

    # -- hooks the mutants override ------------------------------------------

    def _synthetic(self, call: _Call, reason: Reason) -> ToolMessage:
        text = SYNTHETIC[reason]
        if self.policy.synthetic_text is SyntheticText.OWN and not self.policy.says_why(reason, text):
            text = self.policy.words[reason][0]  # the runtime's own words, as it writes them
        return ToolMessage(call_id=call.sent, content=text, is_error=True, synthetic=True)

    def _carries(self, call: _Call) -> bool:
        """Whether the request carries ``call`` (answered, or closed and kept by the policy)."""
        if call.status is CallStatus.ANSWERED:
            return True
        if call.reason is Reason.STREAM_CUT:
            return self.policy.cut_stream is CutStream.SEND_CLOSED
        return self.policy.unanswered is Unanswered.SYNTHESIZE

    def _rename(self, orig: str, line: int) -> str:
        if orig not in self._used:
            return orig
        latest = self._latest.get(orig)
        candidate = f"{orig}#{(latest.uses if latest else 0) + 1}"  # its n-th use
        while candidate in self._used:
            candidate += "'"
        return candidate

    def _declare_inputs(self, n_calls: int, complete: bool) -> tuple[CallInput, ...]:
        return declare_inputs(n_calls, complete)

    def _late_note(self, call: _Call, event: ToolResult) -> UserMessage:
        how = "an error" if event.is_error else "a result"
        return UserMessage(
            text=f"[late tool result] call {call.sent} ({call.name}) returned {how} after it was closed:\n{event.output}"
        )

    # -- events -------------------------------------------------------------

    def _fate(self, line: int, fate: Fate) -> None:
        if self._track:
            self._fates[line - 1] = fate

    def _place(self, entry: _Entry) -> None:
        if self._pending is not None:
            self._pending.queued.append(entry)
        else:
            self._commit(entry)

    def _commit(self, entry: _Entry) -> None:
        if entry.prompt:
            self._prompts.append(len(self._out))
        self._out.append(entry)

    def _assistant(self, event: Assistant, line: int) -> None:
        if self._pending is not None:  # only in logs the state machine refuses
            self._close(CallInput.PROJECT, line, commit=True)
        sent: list[_Call] = []
        for index, (tc, call_input) in enumerate(zip(event.calls, self._declare_inputs(len(event.calls), event.complete))):
            step = call_step(CallStatus.FREE, call_input)
            if step.to is CallStatus.DROPPED:
                self.repairs.append(Repair(RepairKind.HALF_CALL_DROPPED, line, f"{tc.id} ({tc.name}) args {tc.args[:40]!r}", call=tc.id, index=index))
                self._declared(_Call(line, tc.id, tc.id, sys.intern(tc.name), "", CallStatus.DROPPED, index=index))
                continue
            sent_id = self._rename(tc.id, line)
            if sent_id != tc.id:
                self.repairs.append(Repair(RepairKind.ID_RENAMED, line, f"{tc.id} -> {sent_id}", call=tc.id, to=sent_id, index=index))
            self._used.add(sent_id)
            call = _Call(line, tc.id, sent_id, sys.intern(tc.name), tc.args, step.to, reason=step.reason, closed_at=line if step.to is CallStatus.CLOSED else 0, index=index)
            self._declared(call)
            sent.append(call)
        if not sent and not event.text:
            self._fate(line, Fate.DROPPED_EMPTY)
            self.repairs.append(Repair(RepairKind.EMPTY_REPLY_DROPPED, line, "nothing sendable in the reply"))
            return
        self._fate(line, Fate.IN_CONTEXT)
        if not sent:
            self._commit(_Entry(AssistantMessage(text=event.text), line, line))
            return
        ex = _Exchange(line, event.text, sent)
        if ex.open():
            self._pending = ex
        else:  # a cut stream: every sent call is already closed
            self._flush(ex, line)

    def _declared(self, call: _Call) -> None:
        latest = self._latest.get(call.orig)
        call.uses = (latest.uses if latest else 0) + 1
        self._latest[call.orig] = call
        if call.status is CallStatus.OPEN:
            self._open.setdefault(call.orig, []).append(call)

    def _route(self, call_id: str) -> _Call | None:
        """``state.route_result``: the earliest open call with the id, else the latest."""
        waiting = self._open.get(call_id)
        return waiting[0] if waiting else self._latest.get(call_id)

    def _result(self, event: ToolResult, line: int) -> None:
        call = self._route(event.call_id)
        if call is None:
            self._drop_result(line, RepairKind.ORPHAN_DROPPED, f"no call has id {event.call_id!r}", event.call_id)
            return
        step = call_step(call.status, CallInput.RESULT)
        if call.status is CallStatus.OPEN:
            self._open[call.orig].pop(0)
        call.status = step.to
        if step.effect is Effect.ANSWER:
            call.output, call.is_error, call.result_line = event.output, event.is_error, line
            self._fate(line, Fate.IN_CONTEXT)
            if self._pending is not None and not self._pending.open():
                self._flush(self._pending, line)
        elif step.effect is Effect.NOTE and self.policy.late_result is LateResult.DROP:
            self._fate(line, Fate.DROPPED_LATE)
            self.repairs.append(Repair(RepairKind.LATE_DROPPED, line, f"result for {call.sent} arrived after the call was {call.status.value}", call=call.sent, refs=(call.closed_at,)))
        elif step.effect is Effect.NOTE:
            self._fate(line, Fate.NOTE)
            self.repairs.append(
                Repair(RepairKind.LATE_NOTE, line, f"result for {call.sent} arrived after the call was {call.status.value}", call=call.sent, refs=(call.closed_at,))
            )
            self._place(_Entry(self._late_note(call, event), line, line))
        elif step.effect is Effect.DROP_UNDONE:
            self._drop_result(line, RepairKind.UNDONE_RESULT_DROPPED, f"call {event.call_id!r} was undone or cleared", event.call_id)
        else:
            self._drop_result(line, RepairKind.ORPHAN_DROPPED, f"call {event.call_id!r} was never sent", event.call_id)

    def _drop_result(self, line: int, kind: RepairKind, detail: str, call_id: str) -> None:
        self._fate(line, Fate.DROPPED_UNDONE if kind is RepairKind.UNDONE_RESULT_DROPPED else Fate.DROPPED_ORPHAN)
        self.repairs.append(Repair(kind, line, detail, call=call_id))

    def _closure(self, ex: _Exchange, reason: Reason, line: int) -> list[_Entry]:
        """The messages of an exchange as if it closed now (no state changes)."""
        calls = tuple(ex.calls)
        carried = [c for c in calls if self._carries(c)]
        head = AssistantMessage(text=ex.text, calls=tuple(ToolCall(id=c.sent, name=c.name, args=c.args) for c in carried))
        entries = [_Entry(head, ex.line, line, calls=calls, hidden=not carried and not ex.text)]
        if self.policy.block_order is BlockOrder.ARRIVAL:
            carried.sort(key=lambda c: (c.result_line is None, c.result_line or 0))  # results as logged, then closures
        for c in carried:
            if c.status is CallStatus.ANSWERED:
                assert c.output is not None
                msg = ToolMessage(call_id=c.sent, content=c.output, is_error=c.is_error)
            else:
                msg = self._synthetic(c, c.reason if c.status is CallStatus.CLOSED and c.reason else reason)
            entries.append(_Entry(msg, c.result_line or line, line))
        entries.extend(ex.queued)
        return entries

    def _close(self, call_input: CallInput, line: int, *, commit: bool) -> None:
        ex = self._pending
        if ex is None:
            return
        for c in ex.calls:
            step = call_step(c.status, call_input)
            if step.effect is Effect.SYNTHESIZE:
                c.status, c.reason, c.closed_at = step.to, step.reason, line
                kind = RepairKind.SYNTHETIC_RESULT if self._carries(c) else RepairKind.CALL_DROPPED
                self.repairs.append(Repair(kind, line, f"{c.sent} ({c.name}): {step.reason.value if step.reason else ''}", call=c.sent, refs=(c.line,), index=c.index))
        if commit:
            self._flush(ex, line)

    def _flush(self, ex: _Exchange, line: int) -> None:
        arrived = [c.result_line for c in ex.calls if c.result_line is not None]
        if arrived != sorted(arrived) and self.policy.block_order is BlockOrder.CALL:
            self.repairs.append(Repair(RepairKind.RESULTS_REORDERED, ex.line, f"results arrived at lines {arrived}", refs=tuple(arrived)))
        for entry in ex.queued:
            self.repairs.append(Repair(RepairKind.INPUT_HELD, entry.line, f"placed after the tool block of the exchange at line {ex.line}", refs=(line, ex.line)))
        for c in ex.calls:
            if c.status is CallStatus.CLOSED and c.line == line:  # closed at declaration: a cut stream
                kind = RepairKind.SYNTHETIC_RESULT if self._carries(c) else RepairKind.CALL_DROPPED
                self.repairs.append(Repair(kind, line, f"{c.sent} ({c.name}): {Reason.STREAM_CUT.value}", call=c.sent, refs=(c.line,), index=c.index))
        for entry in self._closure(ex, Reason.NEVER_ANSWERED, line):
            entry.emitted = line
            self._commit(entry)
        self._forget(ex)

    def _forget(self, ex: _Exchange) -> None:
        """The exchange is settled: its calls leave routing, their texts live in the messages."""
        for c in ex.calls:
            self._open.pop(c.orig, None)
            c.output, c.args = None, ""
        self._pending = None

    def _compact(self, event: Compaction, line: int) -> None:
        self._cut = max(self._cut, event.upto)
        i = self._start
        keep_input = self.policy.compaction is CompactionOutput.USER_THEN_SUMMARY
        while i < len(self._out) and self._out[i].emitted <= self._cut:
            self._retire(self._out[i], Fate.SUMMARIZED, CallInput.SUMMARIZE)
            if keep_input and self._out[i].user_input:
                self._kept.append(self._out[i])
            i += 1
        # An exchange that straddles the cut was emitted after it: it stays whole.
        # Only entries emitted together with the first kept one can straddle.
        j = i
        while j < len(self._out) and self._out[j].emitted == self._out[i].emitted:
            if self._out[j].calls and self._out[j].line <= self._cut:
                self.repairs.append(Repair(RepairKind.EXCHANGE_KEPT_WHOLE, line, f"exchange at line {self._out[j].line} closed after line {self._cut}; kept whole", refs=(self._out[j].line,)))
            j += 1
        if self._pending is not None and self._pending.line <= self._cut:
            self.repairs.append(Repair(RepairKind.EXCHANGE_KEPT_WHOLE, line, f"exchange at line {self._pending.line} is still open; kept whole", refs=(self._pending.line,)))
        self._start = i
        while self._prompts and self._prompts[0] < i:
            self._prompts.pop(0)
        if self._summary is not None:
            self._fate(self._summary.line, Fate.SUMMARIZED)
        self._summary = _Entry(UserMessage(text=SUMMARY_HEADER + event.summary), line, line)
        self._fate(line, Fate.IN_CONTEXT)
        if self._start > 1024 and self._start * 2 > len(self._out):  # reclaim summarized entries
            self._out = self._out[self._start :]
            self._prompts = [p - self._start for p in self._prompts]
            self._start = 0

    def _retire(self, entry: _Entry, fate: Fate, call_input: CallInput) -> None:
        if self._track and self._fates[entry.line - 1] in (Fate.IN_CONTEXT, Fate.NOTE):
            self._fate(entry.line, fate)
        for c in entry.calls:
            c.status = call_step(c.status, call_input).to
            if c.result_line is not None:
                self._fate(c.result_line, fate)

    def _undo(self, count: int, line: int) -> None:
        ex = self._pending
        queued_prompts = [i for i, e in enumerate(ex.queued) if e.prompt] if ex else []
        if ex is not None and len(queued_prompts) >= count:
            cut = queued_prompts[-count]
            for e in ex.queued[cut:]:
                self._retire(e, Fate.UNDONE, CallInput.DISCARD)
            del ex.queued[cut:]
            return
        count -= len(queued_prompts)
        if ex is not None:
            self._discard_pending(Fate.UNDONE)
        start = self._prompts[-count] if len(self._prompts) >= count else self._start
        for e in self._out[start:]:
            self._retire(e, Fate.UNDONE, CallInput.DISCARD)
        del self._out[start:]
        while self._prompts and self._prompts[-1] >= start:
            self._prompts.pop()

    def _discard_pending(self, fate: Fate) -> None:
        ex = self._pending
        assert ex is not None
        self._fate(ex.line, fate)
        for c in ex.calls:
            c.status = call_step(c.status, CallInput.DISCARD).to
            if c.result_line is not None:
                self._fate(c.result_line, fate)
        for e in ex.queued:
            self._retire(e, fate, CallInput.DISCARD)
        self._forget(ex)

    def _clear(self, line: int) -> None:
        if self._pending is not None:
            self._discard_pending(Fate.CLEARED)
        for e in self._out[self._start :]:
            self._retire(e, Fate.CLEARED, CallInput.DISCARD)
        if self._summary is not None:
            self._fate(self._summary.line, Fate.CLEARED)
        self._out, self._start, self._prompts, self._summary, self._kept = [], 0, [], None, []


def _merge_users(messages: list[tuple[Message, int]]) -> list[tuple[Message, int]]:
    """Adjacent user messages as one, their texts joined by a blank line."""
    out: list[tuple[Message, int]] = []
    for m, line in messages:
        if out and isinstance(m, UserMessage) and isinstance(out[-1][0], UserMessage):
            out[-1] = (UserMessage(text=f"{out[-1][0].text}\n\n{m.text}"), out[-1][1])
        else:
            out.append((m, line))
    return out


def fed(log: Iterable[Event], cls: type[Projector] = Projector, policy: Policy | None = None) -> Projector:
    """A fresh ``cls`` projector after feeding it every event of ``log``."""
    p = cls() if policy is None else cls(policy=policy)
    for event in log:
        p.feed(event)
    return p


def project(log: Iterable[Event], policy: Policy | None = None) -> list[Message]:
    """Batch projection under ``policy`` (the reference's when not given): the request a ``step.begin`` after ``log`` sends."""
    return fed(log, policy=policy).messages()


def project_json(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """The reference projector in the shape ``ctxcontract verify --projector`` takes."""
    return messages_to_openai(project(events_from_dicts(events)))


def project_with_repairs(log: Sequence[Event]) -> tuple[list[Message], list[Repair], dict[int, Fate]]:
    p = fed(log)
    return p.messages(), p.repairs, p.fates()
