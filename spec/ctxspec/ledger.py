"""The ledger: what a log means for the context, item by item.

What this module owns: the *meaning* of a log -- which prompts, replies,
exchanges, late notes and summaries are in the context at a projection point,
in what order, and the fate of every log line.  It is the oracle the contract
(``contract.py``) checks projections against.  It takes every decision about a
call from the tables in ``state.py``; it formats no messages and knows no
projector.

Order in the context
--------------------
Every item has an *origin* (the log line it comes from) and an *emission*
line (the line at which it enters the context).  An exchange -- an assistant
message with calls plus its tool block -- is emitted whole when its last call
closes; user input and late notes that arrive while an exchange is open wait
and are emitted right after it, in arrival order.  Everything else is emitted
at its own line.  The context is ordered by emission, so an exchange is never
interleaved with anything.

Compaction replaces every item emitted at or before ``upto`` (and the previous
summary) with the new summary.  An exchange that was still open at ``upto``
is emitted after it and so is kept whole: a badly placed cut never splits an
exchange.  ``undo n`` removes the last *n* turns (from the *n*-th last prompt
on; everything after the summary when fewer remain); ``clear`` removes all.

The declared policy (``policy.py``) decides two things here: whether a late
result is an item at all (``late_result``), and which calls of an exchange a
request carries (:meth:`Ledger.carried`: ``unanswered`` and ``cut_stream``).
The user input a compaction removed is kept, in order, for policies whose
compaction output repeats it (``summarized_input``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from .events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    SessionMeta,
    ToolResult,
    TurnPrompt,
    TurnSteer,
    Undo,
)
from .policy import REFERENCE, CutStream, LateResult, Policy, Unanswered
from .state import (
    CLOSING_INPUTS,
    USER_INPUT_KINDS,
    CallInput,
    CallStatus,
    Effect,
    Reason,
    call_step,
    declare_inputs,
    route_result,
)


class Fate(enum.Enum):
    """What became of one log line."""

    IN_CONTEXT = "in context"  # its message is in the projection
    NOTE = "late note"  # a result delivered as a user-role note
    SUMMARIZED = "summarized"
    UNDONE = "undone"  # removed by undo
    CLEARED = "cleared"
    DROPPED_ORPHAN = "dropped: answers no call that was sent"
    DROPPED_UNDONE = "dropped: its call was undone or cleared"
    DROPPED_EMPTY = "dropped: empty reply"
    DROPPED_LATE = "dropped: a late result (the policy drops them)"
    CONTROL = "control event: no message of its own"


@dataclass(eq=False)
class Call:
    """One declared tool call and everything that happened to it."""

    line: int
    index: int
    id: str
    name: str
    args: str
    status: CallStatus = CallStatus.FREE
    result_line: int | None = None
    output: str | None = None
    is_error: bool = False
    reason: Reason | None = None
    closed_line: int | None = None

    def apply(self, call_input: CallInput, line: int) -> Effect:
        step = call_step(self.status, call_input)
        if self.status is CallStatus.OPEN and step.to is not CallStatus.OPEN:
            self.closed_line = line
        elif self.status is CallStatus.FREE and step.to is CallStatus.CLOSED:
            self.closed_line = line
        if step.reason is not None:
            self.reason = step.reason
        self.status = step.to
        return step.effect


class Kind(enum.Enum):
    PROMPT = "prompt"
    STEER = "steer"
    NOTIFICATION = "notification"
    REPLY = "reply"  # assistant text without calls that can be sent
    EXCHANGE = "exchange"  # assistant message with calls, and its tool block
    NOTE = "note"  # a late result


@dataclass(eq=False)
class Item:
    """One unit of the context: becomes one message, or a whole exchange."""

    kind: Kind
    line: int
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    note_of: Call | None = None  # for NOTE: the call the late result is about
    is_error: bool = False  # for NOTE
    emitted: int = 0
    waited_for: int | None = None  # origin line of the exchange it waited behind

    def open(self) -> bool:
        return any(c.status is CallStatus.OPEN for c in self.calls)


@dataclass
class Ledger:
    """Feed events in order; ask what the context is at any point."""

    policy: Policy = REFERENCE
    system: str = ""
    summary: str | None = None
    summary_line: int | None = None
    items: list[Item] = field(default_factory=list)  # emitted, in emission order
    pending: Item | None = None  # the open exchange
    queued: list[Item] = field(default_factory=list)  # waiting behind it
    calls_by_id: dict[str, list[Call]] = field(default_factory=dict)
    all_calls: list[Call] = field(default_factory=list)
    fates: dict[int, Fate] = field(default_factory=dict)
    item_of_line: dict[int, Item] = field(default_factory=dict)
    line: int = 0
    cut: int = 0
    #: resume lines at which nothing was in flight (rule C11)
    idle_resumes: list[int] = field(default_factory=list)
    #: user input (prompts, steers, notifications) compactions removed, in order
    summarized_input: list[Item] = field(default_factory=list)
    #: late results the policy drops (``late_result = "drop"``), as note items that are never emitted
    dropped_notes: list[Item] = field(default_factory=list)

    # -- feeding -----------------------------------------------------------

    def feed(self, event: Event) -> None:
        self.line += 1
        line = self.line
        self.fates[line] = Fate.CONTROL
        if isinstance(event, SessionMeta):
            self.system = event.system
            if event.system:
                self.fates[line] = Fate.IN_CONTEXT
        elif event.type in USER_INPUT_KINDS:
            assert isinstance(event, (TurnPrompt, TurnSteer, Notification))
            kind = {TurnPrompt: Kind.PROMPT, TurnSteer: Kind.STEER, Notification: Kind.NOTIFICATION}[type(event)]
            self._arrive(Item(kind, line, text=event.text), line)
        elif isinstance(event, Assistant):
            self._close_pending(CallInput.PROJECT, line)  # unreachable in valid logs
            self._assistant(event, line)
        elif isinstance(event, ToolResult):
            self._result(event, line)
        elif isinstance(event, Compaction):
            self._compact(event, line)
        elif isinstance(event, Undo):
            self._undo(event.count, line)
        elif isinstance(event, Clear):
            self._drop(self._take_all(), Fate.CLEARED, line)
            if self.summary_line is not None:
                self.fates[self.summary_line] = Fate.CLEARED
            self.summary = None
            self.summary_line = None
            self.summarized_input = []
        elif event.type in CLOSING_INPUTS:
            if event.type == "resume" and self.pending is None:
                self.idle_resumes.append(line)
            self._close_pending(CLOSING_INPUTS[event.type], line)

    def _arrive(self, item: Item, line: int) -> None:
        self.item_of_line[item.line] = item
        self.fates[item.line] = Fate.NOTE if item.kind is Kind.NOTE else Fate.IN_CONTEXT
        if self.pending is not None:
            item.waited_for = self.pending.line
            self.queued.append(item)
        else:
            self._emit(item, line)

    def _emit(self, item: Item, line: int) -> None:
        item.emitted = line
        self.items.append(item)

    def _assistant(self, event: Assistant, line: int) -> None:
        inputs = declare_inputs(len(event.calls), event.complete)
        sent: list[Call] = []
        for index, (tc, call_input) in enumerate(zip(event.calls, inputs)):
            call = Call(line, index, tc.id, tc.name, tc.args)
            call.apply(call_input, line)
            self.calls_by_id.setdefault(tc.id, []).append(call)
            self.all_calls.append(call)
            if call.status is not CallStatus.DROPPED:
                sent.append(call)
        if sent:
            item = Item(Kind.EXCHANGE, line, text=event.text, calls=sent)
        elif event.text:
            item = Item(Kind.REPLY, line, text=event.text)
        else:
            self.fates[line] = Fate.DROPPED_EMPTY
            return
        self.item_of_line[line] = item
        self.fates[line] = Fate.IN_CONTEXT
        if item.open():
            self.pending = item
        else:
            self._emit(item, line)

    def _result(self, event: ToolResult, line: int) -> None:
        candidates = self.calls_by_id.get(event.call_id, [])
        pick = route_result([c.status for c in candidates])
        if pick is None:
            self.fates[line] = Fate.DROPPED_ORPHAN
            return
        call = candidates[pick]
        effect = call.apply(CallInput.RESULT, line)
        if effect is Effect.ANSWER:
            call.result_line, call.output, call.is_error = line, event.output, event.is_error
            self.fates[line] = Fate.IN_CONTEXT
            if self.pending is not None and not self.pending.open():
                self._flush(line)
        elif effect is Effect.NOTE and self.policy.late_result is LateResult.DROP:
            self.fates[line] = Fate.DROPPED_LATE
            self.dropped_notes.append(Item(Kind.NOTE, line, text=event.output, note_of=call, is_error=event.is_error))
        elif effect is Effect.NOTE:
            self._arrive(Item(Kind.NOTE, line, text=event.output, note_of=call, is_error=event.is_error), line)
        elif effect is Effect.DROP_UNDONE:
            self.fates[line] = Fate.DROPPED_UNDONE
        else:
            self.fates[line] = Fate.DROPPED_ORPHAN

    def _close_pending(self, call_input: CallInput, line: int) -> None:
        if self.pending is None:
            return
        for call in self.pending.calls:
            call.apply(call_input, line)
        self._flush(line)

    def _flush(self, line: int) -> None:
        assert self.pending is not None
        self._emit(self.pending, line)
        for item in self.queued:
            self._emit(item, line)
        self.pending = None
        self.queued = []

    def _compact(self, event: Compaction, line: int) -> None:
        self.cut = max(self.cut, event.upto)
        keep = 0
        while keep < len(self.items) and self.items[keep].emitted <= self.cut:
            keep += 1
        self._drop(self.items[:keep], Fate.SUMMARIZED, line)
        self.summarized_input.extend(it for it in self.items[:keep] if it.kind in _INPUT)
        del self.items[:keep]
        if self.summary_line is not None:
            self.fates[self.summary_line] = Fate.SUMMARIZED
        self.summary = event.summary
        self.summary_line = line
        self.fates[line] = Fate.IN_CONTEXT

    def _undo(self, count: int, line: int) -> None:
        # Every turn is a prompt; a queued prompt belongs after the pending exchange.
        order = self.items + ([self.pending] if self.pending else []) + self.queued
        prompts = [i for i, item in enumerate(order) if item.kind is Kind.PROMPT]
        start = prompts[-count] if len(prompts) >= count else 0
        removed = order[start:]
        n_items = len(self.items)
        if start <= n_items:  # a committed prompt: the open exchange came after it
            del self.items[start:]
            self.pending, self.queued = None, []
        else:  # a prompt still queued behind the open exchange
            del self.queued[start - n_items - 1 :]
        self._drop(removed, Fate.UNDONE, line)

    def _take_all(self) -> list[Item]:
        out = self.items + ([self.pending] if self.pending else []) + self.queued
        self.items, self.pending, self.queued = [], None, []
        return out

    def _drop(self, items: Iterable[Item], fate: Fate, line: int) -> None:
        call_input = CallInput.SUMMARIZE if fate is Fate.SUMMARIZED else CallInput.DISCARD
        for item in items:
            self.fates[item.line] = fate
            for call in item.calls:
                call.apply(call_input, line)
                if call.result_line is not None:
                    self.fates[call.result_line] = fate

    # -- questions ------------------------------------------------------------

    def context(self) -> list[Item]:
        """The items of a request built now (open calls closed as a step.begin would)."""
        out = list(self.items)
        if self.pending is not None:
            out.append(self.pending)
            out.extend(self.queued)
        return out

    def carried(self, item: Item) -> list[Call]:
        """The calls of ``item`` a request built now carries, under the policy."""
        return [c for c in item.calls if self.is_carried(c)]

    def is_carried(self, call: Call) -> bool:
        """Whether a request built now carries ``call`` (answered, or closed and kept by the policy)."""
        if call.status is CallStatus.ANSWERED:
            return True
        if call.reason is Reason.STREAM_CUT:
            return self.policy.cut_stream is CutStream.SEND_CLOSED
        return self.policy.unanswered is Unanswered.SYNTHESIZE

    def open_calls(self) -> list[Call]:
        return [c for c in self.pending.calls if c.status is CallStatus.OPEN] if self.pending else []


_INPUT = (Kind.PROMPT, Kind.STEER, Kind.NOTIFICATION)


def ledger_of(events: Iterable[Event], policy: Policy | None = None) -> Ledger:
    """The ledger after feeding every event."""
    ledger = Ledger(policy=policy or REFERENCE)
    for event in events:
        ledger.feed(event)
    return ledger
