"""The verdict on an event-log session file, streamed in bounded memory.

The file is imported record by record and fed to the reference projector as
it goes; nothing but the projector's own state (the current context, the ids
in use), 4 bytes per event (its original line) and, for a reply whose calls
have records of their own, 8 bytes and 4 per call (:class:`CallLines`) is kept.  Every repair the
projector makes is a *hazard*: a place where a naive projection of this log
is not sendable, with the contract rule it would break and the original line.

At the end of the file the session is resumed, as the runtime will resume it:
calls still open there are hazards "at the end of the file".
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from ctxspec.events import Resume
from ctxspec.messages import AssistantMessage, Message, ToolMessage
from ctxspec.policy import Policy
from ctxspec.rules import Level

from ..projector import Projector, Repair, RepairKind
from . import stream
from .base import ImportReport, open_input

#: The rule a naive projection would break where the reference had to repair,
#: and what breaking it there costs.  A naive projection replays the log as it
#: stands: an unanswered call, a second or orphan answer, input inside a block,
#: a reused id or a half call is a 400; only the order inside a block is not.
REPAIR_RULES: Final[dict[RepairKind, tuple[str, Level]]] = {
    RepairKind.SYNTHETIC_RESULT: ("C5", Level.REJECT),
    RepairKind.LATE_NOTE: ("C8", Level.REJECT),
    RepairKind.ORPHAN_DROPPED: ("C2", Level.REJECT),
    RepairKind.UNDONE_RESULT_DROPPED: ("C2", Level.REJECT),
    RepairKind.ID_RENAMED: ("C3", Level.REJECT),
    RepairKind.HALF_CALL_DROPPED: ("C10", Level.REJECT),
    RepairKind.EMPTY_REPLY_DROPPED: ("C10", Level.REJECT),
    RepairKind.EXCHANGE_KEPT_WHOLE: ("C7", Level.REJECT),
    RepairKind.INPUT_HELD: ("C6", Level.REJECT),
    RepairKind.RESULTS_REORDERED: ("C1", Level.POLICY),
    RepairKind.CALL_DROPPED: ("C5", Level.REJECT),
    RepairKind.LATE_DROPPED: ("C2", Level.REJECT),
}


@dataclass(frozen=True, slots=True)
class Hazard:
    rule: str
    level: Level  # what the naive projection's request costs here
    repair: Repair
    line: int  # in the original file; 0: at the end of the file
    what: str  # in the original file's line numbers

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "end of file (if resumed from here)"
        return f"{where}: {self.what}"


def describe(r: Repair, original: Callable[[int], int], call_line: Callable[[int, int], int] | None = None) -> str:
    """What a repair means for the file, in the file's own line numbers.

    ``call_line(canonical line, index)`` is the line of the record of a reply's
    call (:class:`CallLines`); without it a call is placed on its reply's line.
    """
    def at(line: int) -> str:
        return f"line {original(line)}" if original(line) else "the end of the file"

    def declared() -> str:
        line = call_line(r.refs[0], r.index) if call_line is not None and r.index >= 0 else original(r.refs[0])
        return f"line {line}" if line else "the end of the file"

    kind = r.kind
    if kind is RepairKind.CALL_DROPPED:
        reason = r.detail.rsplit(": ", 1)[-1]
        return f"call {r.call} (declared at {declared()}) has no result: {reason}; the policy leaves it out, a naive projection sends it unanswered"
    if kind is RepairKind.LATE_DROPPED:
        return f"a result for {r.call} arrived after its call was closed or answered; the policy drops it, a naive projection sends it as a second answer"
    if kind is RepairKind.SYNTHETIC_RESULT:
        reason = r.detail.rsplit(": ", 1)[-1]
        return f"call {r.call} (declared at {declared()}) has no result: {reason}; a naive projection sends it unanswered"
    if kind is RepairKind.INPUT_HELD:
        return f"user input arrived inside the exchange of {at(r.refs[1])}, between its calls and their results"
    if kind is RepairKind.EXCHANGE_KEPT_WHOLE:
        return f"the compaction cuts the exchange of {at(r.refs[0])} from its results"
    if kind is RepairKind.RESULTS_REORDERED:
        return "results out of call order, at lines " + ", ".join(str(original(x)) for x in r.refs)
    if kind is RepairKind.LATE_NOTE:
        return f"a result for {r.call} arrived after its call was closed or answered"
    if kind is RepairKind.ORPHAN_DROPPED:
        return f"a result for {r.call!r}, which no call that was sent has"
    if kind is RepairKind.UNDONE_RESULT_DROPPED:
        return f"a result for {r.call!r}, whose call was undone or cleared"
    if kind is RepairKind.ID_RENAMED:
        return f"call id {r.call} is used again"
    if kind is RepairKind.HALF_CALL_DROPPED:
        return f"call {r.call} was cut mid-arguments by a broken stream"
    return "a reply with nothing in it that can be sent"


class CallLines:
    """Where each call of a reply was declared, when that is not the reply's first line.

    A format that writes each call as a record of its own (a Codex
    ``function_call`` after a ``reasoning`` item, a Kimi ``tool.call`` after a
    ``content.part``) gives each call its own line (:attr:`Sourced.calls`).
    Only those replies are kept, 4 bytes per call and 8 per reply, so a log
    whose calls sit on their reply's line costs nothing more than its
    4 bytes per event.
    """

    def __init__(self) -> None:
        self._events = array("I")  # canonical line of each reply kept, ascending
        self._starts = array("I")  # where its calls begin in _lines
        self._lines = array("I")

    def add(self, canonical: int, lines: Sequence[int]) -> None:
        self._events.append(canonical)
        self._starts.append(len(self._lines))
        self._lines.extend(lines)

    def get(self, canonical: int, index: int) -> int | None:
        """The original line of call ``index`` of the reply on canonical line ``canonical`` (None: its reply's line)."""
        k = bisect_left(self._events, canonical)
        if k == len(self._events) or self._events[k] != canonical:
            return None
        start = self._starts[k]
        end = self._starts[k + 1] if k + 1 < len(self._starts) else len(self._lines)
        return self._lines[start + index] if 0 <= index < end - start else None


@dataclass(frozen=True, slots=True)
class Verdict:
    path: str
    format: str
    events: int
    hazards: tuple[Hazard, ...]
    #: The request a step at the end of the file sends, each message with its original line.
    messages: tuple[tuple[Message, int], ...]
    report: ImportReport


def check_file(path: str, *, format: str | None = None, lenient: bool = False, policy: Policy | None = None) -> Verdict:
    """Import ``path`` (detecting its format unless given) and project it under ``policy``, streaming."""
    report = ImportReport(path=path)
    projector = Projector(track_fates=False, policy=policy)
    origins = array("I")
    calls = CallLines()
    with open_input(path) as handle:
        name, events = stream(handle, report, format=format, lenient=lenient)
        for sourced in events:
            origins.append(sourced.line)
            if sourced.calls:
                calls.add(len(origins), sourced.calls)
            projector.feed(sourced.event)

    def original(line: int) -> int:
        return origins[line - 1] if 1 <= line <= len(origins) else 0

    def call_line(line: int, index: int) -> int:
        own = calls.get(line, index)
        return own if own is not None else original(line)

    def place(r: Repair) -> int:
        """A repair about a call as it is declared (a reused id, a half call) is on the call's own record."""
        if r.kind in (RepairKind.ID_RENAMED, RepairKind.HALF_CALL_DROPPED) and r.index >= 0:
            return call_line(r.line, r.index)
        return original(r.line)

    messages = tuple((m, original(line)) for m, line in projector.sourced_messages())
    projector.feed(Resume())  # as the runtime will resume it
    hazards = tuple(Hazard(*REPAIR_RULES[r.kind], r, place(r), describe(r, original, call_line)) for r in projector.repairs)
    return Verdict(path, name, len(origins), hazards, messages, report)


@dataclass(frozen=True, slots=True)
class Difference:
    index: int
    expected: tuple[Message, int] | None  # the reference's message and its original line
    got: tuple[Message, int] | None  # the captured message and its line in the captured file

    def describe(self) -> str:
        out = [f"first difference at message {self.index}:"]
        if self.expected is not None:
            m, line = self.expected
            origin = f"line {line} of the session" if line else "no line of the session"
            out.append(f"  reference sends {_short(m)} (from {origin})")
        else:
            out.append("  reference sends nothing more")
        if self.got is not None:
            m, line = self.got
            out.append(f"  captured request has {_short(m)} (its line {line})")
        else:
            out.append("  captured request has nothing more")
        return "\n".join(out)


def _plain(m: Message) -> Message:
    """A message as a provider sees it (our extension flags are not on the wire)."""
    return replace(m, is_error=False, synthetic=False) if isinstance(m, ToolMessage) else m


def _short(m: Message) -> str:
    if isinstance(m, ToolMessage):
        return f"a tool message for {m.call_id}: {m.content[:60]!r}"
    if isinstance(m, AssistantMessage):
        calls = ", ".join(c.id for c in m.calls)
        return f"an assistant message{' calling ' + calls if calls else ''}: {m.text[:60]!r}"
    return f"a {m.role} message: {m.text[:60]!r}"


def request_difference(expected: Sequence[tuple[Message, int]], got: Sequence[tuple[Message, int]]) -> Difference | None:
    """Where a captured request first differs from the reference projection."""
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else None
        g = got[i] if i < len(got) else None
        if e is None or g is None or _plain(e[0]) != _plain(g[0]):
            return Difference(i, e, g)
    return None
