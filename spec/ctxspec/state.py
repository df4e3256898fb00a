"""The session state machine: which events may follow which, and what each
event does to each tool call.

Rules of this file
------------------
* Everything that decides a transition lives here, as plain tables.  The
  Hypothesis machine (``checker.py``), the log validator below, the ledger
  (``ledger.py``), the Z3 abstraction and the state diagram in the docs all
  read these tables; none keeps a copy of its own.
* This file does not know about messages or projectors.  It knows phases,
  call statuses and events.
* The tables are total: every (phase, event) and every (status, input) pair is
  either a transition or a named :class:`Refusal`.  ``tests/test_state.py``
  checks that.

Theory of operation
-------------------
A session is two kinds of machine running side by side.

**The runtime's phase** (one per session).  ``IDLE`` waits for the user.  A
``turn.prompt`` starts a turn (``TURN``).  ``step.begin`` builds and sends a
model request (``STEP``) -- the *projection point*, where the message list is
computed and must satisfy the contract.  The model's ``assistant`` reply moves
the step to ``REPLIED``; ``step.end`` (or a ``step.error`` that cuts the
stream) goes back to ``TURN``, where tools run and results arrive, until the
next ``step.begin`` or ``turn.end``.  ``turn.cancel`` ends a turn from any
running phase.

The environment's faults are in the same table: ``resume`` (the process died
and restarted from the log) is allowed in every phase and lands in ``IDLE``;
``tool.result`` may arrive in any phase (late, twice, for an unknown id);
steers arrive anywhere inside a turn and notifications anywhere at all;
``compaction`` may happen in any phase, at any log position.  ``undo`` and
``clear`` are user commands and only exist between turns.

**Each tool call's status** (one machine per call).  An ``assistant`` event
declares its calls: ``OPEN`` normally; on a cut stream (``complete: false``)
the last call may be cut mid-arguments and is ``DROPPED`` (never sent), the
calls before it were fully streamed and are closed at once (``CLOSED``,
reason *stream cut*).  A result moves an open call to ``ANSWERED``.  Three
events close whatever is still open, each with its own reason: ``turn.cancel``
(*cancelled*), ``resume`` (*lost at crash*) and ``step.begin`` (*never
answered*: a request is being built and cannot wait).  A result for a call
that is no longer open becomes a late note; for a call that was undone or
cleared it is dropped; for an id no call has, it is an orphan and dropped.
Compaction moves whole closed exchanges to ``SUMMARIZED``; an open call is
never summarized (that would split an exchange), and the table refuses it.

Routing: a ``tool.result`` answers the earliest *open* call declared with that
id; when none is open, the latest call with that id (so a duplicate or late
result is a note about the right call); when no call has that id, nobody.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Union

from .errors import InvalidLog
from .events import (
    EVENT_CLASSES,
    Compaction,
    Event,
    SessionMeta,
)

# ---------------------------------------------------------------------------
# Phases of the runtime and the phase table.
# ---------------------------------------------------------------------------


class Phase(enum.Enum):
    IDLE = "idle"  # between turns
    TURN = "turn"  # in a turn, between steps: tools run, results arrive
    STEP = "step"  # a request is in flight
    REPLIED = "replied"  # the model replied; the step has not ended yet


@dataclass(frozen=True, slots=True)
class Refusal:
    """A named reason why an event (or input) cannot happen in a state."""

    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.name}: {self.why}"


#: Event type names, in the order of ``events.EVENT_CLASSES`` (without the meta line).
EVENT_KINDS: Final[tuple[str, ...]] = tuple(cls.type for cls in EVENT_CLASSES if cls is not SessionMeta)

_R = Refusal
_META = _R("meta_not_first", "session.meta may only be the first line")
_NO_TURN = "there is no running turn"
_NO_STEP = "no step is in flight"
_IN_TURN = "a turn is running (input during a turn is a turn.steer)"

PhaseTarget = Union[Phase, Refusal]

#: ``PHASE_TABLE[phase][event type]`` -> the next phase, or why the event cannot happen.
PHASE_TABLE: Final[Mapping[Phase, Mapping[str, PhaseTarget]]] = {
    Phase.IDLE: {
        "turn.prompt": Phase.TURN,
        "turn.steer": _R("steer_outside_turn", _NO_TURN),
        "notification": Phase.IDLE,
        "turn.cancel": _R("cancel_outside_turn", _NO_TURN),
        "turn.end": _R("end_outside_turn", _NO_TURN),
        "step.begin": _R("step_outside_turn", _NO_TURN),
        "assistant": _R("reply_outside_step", _NO_STEP),
        "step.error": _R("error_outside_step", _NO_STEP),
        "step.end": _R("end_outside_step", _NO_STEP),
        "tool.result": Phase.IDLE,
        "resume": Phase.IDLE,
        "compaction": Phase.IDLE,
        "undo": Phase.IDLE,
        "clear": Phase.IDLE,
        "session.meta": _META,
    },
    Phase.TURN: {
        "turn.prompt": _R("prompt_during_turn", _IN_TURN),
        "turn.steer": Phase.TURN,
        "notification": Phase.TURN,
        "turn.cancel": Phase.IDLE,
        "turn.end": Phase.IDLE,
        "step.begin": Phase.STEP,
        "assistant": _R("reply_outside_step", _NO_STEP),
        "step.error": _R("error_outside_step", _NO_STEP),
        "step.end": _R("end_outside_step", _NO_STEP),
        "tool.result": Phase.TURN,
        "resume": Phase.IDLE,
        "compaction": Phase.TURN,
        "undo": _R("undo_during_turn", "undo is a command between turns"),
        "clear": _R("clear_during_turn", "clear is a command between turns"),
        "session.meta": _META,
    },
    Phase.STEP: {
        "turn.prompt": _R("prompt_during_turn", _IN_TURN),
        "turn.steer": Phase.STEP,
        "notification": Phase.STEP,
        "turn.cancel": Phase.IDLE,
        "turn.end": _R("end_during_step", "a step is in flight; it must end or fail first"),
        "step.begin": _R("step_during_step", "a step is already in flight"),
        "assistant": Phase.REPLIED,
        "step.error": Phase.TURN,
        "step.end": _R("end_before_reply", "the step has no reply yet"),
        "tool.result": Phase.STEP,
        "resume": Phase.IDLE,
        "compaction": Phase.STEP,
        "undo": _R("undo_during_turn", "undo is a command between turns"),
        "clear": _R("clear_during_turn", "clear is a command between turns"),
        "session.meta": _META,
    },
    Phase.REPLIED: {
        "turn.prompt": _R("prompt_during_turn", _IN_TURN),
        "turn.steer": Phase.REPLIED,
        "notification": Phase.REPLIED,
        "turn.cancel": Phase.IDLE,
        "turn.end": _R("end_during_step", "a step is in flight; it must end or fail first"),
        "step.begin": _R("step_during_step", "a step is already in flight"),
        "assistant": _R("second_reply", "a step has one reply"),
        "step.error": Phase.TURN,
        "step.end": Phase.TURN,
        "tool.result": Phase.REPLIED,
        "resume": Phase.IDLE,
        "compaction": Phase.REPLIED,
        "undo": _R("undo_during_turn", "undo is a command between turns"),
        "clear": _R("clear_during_turn", "clear is a command between turns"),
        "session.meta": _META,
    },
}

# ---------------------------------------------------------------------------
# Tool-call statuses and the call table.
# ---------------------------------------------------------------------------


class CallStatus(enum.Enum):
    FREE = "free"  # no call (a slot in the abstraction)
    OPEN = "open"  # declared, no result yet
    ANSWERED = "answered"  # its result arrived while it was open
    CLOSED = "closed"  # closed without a result: gets a synthetic result
    SUMMARIZED = "summarized"  # its whole exchange was replaced by a summary
    GONE = "gone"  # undone or cleared
    DROPPED = "dropped"  # cut mid-arguments: never sent


class CallInput(enum.Enum):
    """What one event does to one call."""

    DECLARE = "declare"  # in a complete assistant message
    DECLARE_CUT = "declare_cut"  # fully streamed call of a cut message
    DECLARE_HALF = "declare_half"  # the last call of a cut message
    RESULT = "result"  # a tool.result routed to this call
    CANCEL = "cancel"  # turn.cancel
    CRASH = "crash"  # resume
    PROJECT = "project"  # step.begin
    SUMMARIZE = "summarize"  # a compaction covers its exchange
    DISCARD = "discard"  # undo or clear covers it


class Reason(enum.Enum):
    """Why a call got a synthetic result.  The words are what rule C5 looks for."""

    CANCELLED = "cancelled"
    LOST_AT_CRASH = "lost at crash"
    STREAM_CUT = "stream cut"
    NEVER_ANSWERED = "never answered"


class Effect(enum.Enum):
    NONE = "none"
    SYNTHESIZE = "synthesize"  # the call gets a synthetic error result
    ANSWER = "answer"  # the result is the call's tool message
    NOTE = "note"  # the result is delivered as a user-role note
    DROP_UNDONE = "drop_undone"  # the result's call was undone or cleared
    DROP_ORPHAN = "drop_orphan"  # the result answers nothing that was sent


@dataclass(frozen=True, slots=True)
class Step:
    """A call-table transition: the next status, what happens, and why."""

    to: CallStatus
    effect: Effect = Effect.NONE
    reason: Reason | None = None


CallTarget = Union[Step, Refusal]

_S = Step
_TWICE = _R("declared_twice", "a call is declared once; a reused id is a new call")
_SPLIT = _R("split_exchange", "an open call cannot be summarized: that would split its exchange")


def _declare_refused() -> dict[CallInput, CallTarget]:
    return {CallInput.DECLARE: _TWICE, CallInput.DECLARE_CUT: _TWICE, CallInput.DECLARE_HALF: _TWICE}


def _settled(status: CallStatus, on_result: Effect) -> dict[CallInput, CallTarget]:
    """Statuses where only a compaction or a discard can still change anything."""
    row: dict[CallInput, CallTarget] = _declare_refused()
    row[CallInput.RESULT] = _S(status, on_result)
    for quiet in (CallInput.CANCEL, CallInput.CRASH, CallInput.PROJECT):
        row[quiet] = _S(status)
    row[CallInput.SUMMARIZE] = _S(CallStatus.SUMMARIZED)
    row[CallInput.DISCARD] = _S(CallStatus.GONE)
    return row


#: ``CALL_TABLE[status][input]`` -> the transition, or why it cannot happen.
CALL_TABLE: Final[Mapping[CallStatus, Mapping[CallInput, CallTarget]]] = {
    CallStatus.FREE: {
        CallInput.DECLARE: _S(CallStatus.OPEN),
        CallInput.DECLARE_CUT: _S(CallStatus.CLOSED, Effect.SYNTHESIZE, Reason.STREAM_CUT),
        CallInput.DECLARE_HALF: _S(CallStatus.DROPPED),
        CallInput.RESULT: _S(CallStatus.FREE, Effect.DROP_ORPHAN),
        CallInput.CANCEL: _S(CallStatus.FREE),
        CallInput.CRASH: _S(CallStatus.FREE),
        CallInput.PROJECT: _S(CallStatus.FREE),
        CallInput.SUMMARIZE: _R("summarize_free", "there is no call to summarize"),
        CallInput.DISCARD: _S(CallStatus.FREE),
    },
    CallStatus.OPEN: {
        **_declare_refused(),
        CallInput.RESULT: _S(CallStatus.ANSWERED, Effect.ANSWER),
        CallInput.CANCEL: _S(CallStatus.CLOSED, Effect.SYNTHESIZE, Reason.CANCELLED),
        CallInput.CRASH: _S(CallStatus.CLOSED, Effect.SYNTHESIZE, Reason.LOST_AT_CRASH),
        CallInput.PROJECT: _S(CallStatus.CLOSED, Effect.SYNTHESIZE, Reason.NEVER_ANSWERED),
        CallInput.SUMMARIZE: _SPLIT,
        CallInput.DISCARD: _S(CallStatus.GONE),
    },
    CallStatus.ANSWERED: _settled(CallStatus.ANSWERED, Effect.NOTE),
    CallStatus.CLOSED: _settled(CallStatus.CLOSED, Effect.NOTE),
    CallStatus.SUMMARIZED: {
        **_settled(CallStatus.SUMMARIZED, Effect.NOTE),
        CallInput.DISCARD: _S(CallStatus.SUMMARIZED),  # undo/clear cannot reach into a summary
    },
    CallStatus.GONE: {
        **_settled(CallStatus.GONE, Effect.DROP_UNDONE),
        CallInput.SUMMARIZE: _R("summarize_gone", "an undone call is not in the context"),
    },
    CallStatus.DROPPED: {
        **_settled(CallStatus.DROPPED, Effect.DROP_ORPHAN),
        CallInput.SUMMARIZE: _R("summarize_dropped", "a dropped half call is not in the context"),
        CallInput.DISCARD: _S(CallStatus.DROPPED),
    },
}

#: Events whose text is user-role input: it waits behind an open exchange.
USER_INPUT_KINDS: Final[frozenset[str]] = frozenset({"turn.prompt", "turn.steer", "notification"})

#: Events that rewrite the context instead of extending it (rule C9 does not span them).
REWRITE_KINDS: Final[frozenset[str]] = frozenset({"compaction", "undo", "clear"})

#: Which call input each event applies to the calls still open.
CLOSING_INPUTS: Final[Mapping[str, CallInput]] = {
    "turn.cancel": CallInput.CANCEL,
    "resume": CallInput.CRASH,
    "step.begin": CallInput.PROJECT,
}


def call_step(status: CallStatus, call_input: CallInput) -> Step:
    """Look up the call table; a refusal is a bug in the caller, so it raises."""
    target = CALL_TABLE[status][call_input]
    if isinstance(target, Refusal):
        raise RuntimeError(f"call table refuses {call_input.value} in {status.value}: {target}")
    return target


def declare_inputs(n_calls: int, complete: bool) -> tuple[CallInput, ...]:
    """The input each call of an ``assistant`` event gets, in call order."""
    if complete:
        return (CallInput.DECLARE,) * n_calls
    if n_calls == 0:
        return ()
    return (CallInput.DECLARE_CUT,) * (n_calls - 1) + (CallInput.DECLARE_HALF,)


def route_result(candidates: Sequence[CallStatus]) -> int | None:
    """Which of the calls declared with one id (oldest first) a result goes to."""
    for i, status in enumerate(candidates):
        if status is CallStatus.OPEN:
            return i
    return len(candidates) - 1 if candidates else None


# ---------------------------------------------------------------------------
# Walking a log through the phase table.
# ---------------------------------------------------------------------------


def next_phase(phase: Phase, event: Event) -> PhaseTarget:
    return PHASE_TABLE[phase][event.type]


class SessionState:
    """Validates a log event by event against the phase table.

    >>> from ctxspec.events import SessionMeta, TurnPrompt, StepEnd
    >>> s = SessionState()
    >>> s.feed(SessionMeta()); s.feed(TurnPrompt(text="hi")); s.phase
    <Phase.TURN: 'turn'>
    >>> s.feed(StepEnd())
    Traceback (most recent call last):
    ...
    ctxspec.errors.InvalidLog: <log>:3: step.end refused in phase turn: end_outside_step: no step is in flight
    """

    __slots__ = ("phase", "line")

    def __init__(self) -> None:
        self.phase = Phase.IDLE
        self.line = 0

    def feed(self, event: Event) -> None:
        self.line += 1
        if self.line == 1:
            if not isinstance(event, SessionMeta):
                raise InvalidLog(f"line 1 must be session.meta, got {event.type}", line=1)
            return
        if isinstance(event, Compaction) and event.upto >= self.line:
            raise InvalidLog(
                f"compaction.upto {event.upto} must name an earlier line (this is line {self.line})",
                line=self.line,
            )
        target = next_phase(self.phase, event)
        if isinstance(target, Refusal):
            raise InvalidLog(f"{event.type} refused in phase {self.phase.value}: {target}", line=self.line)
        self.phase = target


def validate_log(events: Iterable[Event]) -> Phase:
    """Raise :class:`InvalidLog` at the first event the state machine refuses."""
    state = SessionState()
    for event in events:
        state.feed(event)
    return state.phase


def allowed_events(phase: Phase) -> tuple[str, ...]:
    """The event types the table lets happen in ``phase`` (drives the Hypothesis machine)."""
    return tuple(k for k in EVENT_KINDS if isinstance(PHASE_TABLE[phase][k], Phase))
