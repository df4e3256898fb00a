"""What a picture of a session holds, built from the log, the projection and the findings.

What this module owns: turning a session (a canonical log with the file's
lines, or a message list) and what was found in it into a :class:`Picture`:
timeline rows, call bars with their fates, spans (steps, compactions), one or
two projection columns, and every finding tied to the rows, bars and messages
it is about.  It draws nothing (``page.py`` and ``svg.py`` do) and reads no
file (``__init__.py`` does).

Theory of operation:

* **Time runs down.**  Each canonical event is one row, numbered by the line
  of the file it came from.  A tool call is a bar in a lane of its own, from
  the reply that declared it to the event that settled it: its result, or the
  cancel, crash or request that closed it.  A result that arrives after that
  extends the bar, dashed, to where it arrived (a late note, or dropped).
* **The fates come from the ledger** (``ctxspec.ledger``), the oracle the
  contract checks against, never from the projector under test.
* **Every finding has both sides.**  On the timeline: the rows it names and
  the bars of the calls it names.  In the projection: the messages from those
  rows or about those calls.  Where the projection has no such message (a
  message left out, a tool message missing) a *ghost* row stands where it
  is missing, so that a finding is never shown on one side only.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ctxspec.events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    Resume,
    SessionMeta,
    StepBegin,
    StepEnd,
    StepError,
    ToolResult,
    TurnCancel,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
    Undo,
)
from ctxspec.ledger import Fate as LineFate
from ctxspec.ledger import Ledger
from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage
from ctxspec.policy import Policy
from ctxspec.rules import RULES
from ctxspec.state import CallStatus


class CallFate(enum.Enum):
    """How a tool call ended, as the picture colours it."""

    ANSWERED = "answered"
    CLOSED = "closed"  # with a reason: cancelled, lost at crash, stream cut, never answered
    OPEN = "open at the end"  # still running when the file ends: closed when it is resumed
    DROPPED = "dropped"  # cut mid-arguments: never sent
    UNANSWERED = "unanswered"  # a message list: no tool message answers it


class Later(enum.Enum):
    """What happened to a settled call afterwards."""

    NONE = ""
    LATE_NOTE = "late note"  # its result arrived after it was closed, sent as a user note
    LATE_DROPPED = "late result dropped"  # ... and the policy drops it
    SUMMARIZED = "summarized"
    UNDONE = "undone"
    CLEARED = "cleared"


class Kind(enum.Enum):
    """The kind of a timeline row (an event, or a message of a message-list file)."""

    META = "system"
    PROMPT = "prompt"
    STEER = "steer"
    NOTIFICATION = "notification"
    REQUEST = "request"  # step.begin: a projection point
    REPLY = "reply"
    STEP_END = "step end"
    STEP_ERROR = "step error"
    RESULT = "result"
    RESUME = "crash / resume"
    CANCEL = "cancel"
    TURN_END = "turn end"
    COMPACTION = "compaction"
    UNDO = "undo"
    CLEAR = "clear"


#: The row kinds drawn as markers (a coloured chip), not as plain rows.
MARKERS: Final = frozenset({Kind.STEER, Kind.NOTIFICATION, Kind.RESUME, Kind.CANCEL, Kind.COMPACTION, Kind.UNDO, Kind.CLEAR, Kind.STEP_ERROR})


@dataclass(frozen=True, slots=True)
class Row:
    """One timeline row: canonical event ``index`` (1-based), from the file's ``line`` (0: none)."""

    index: int
    line: int
    kind: Kind
    text: str
    calls: tuple[str, ...] = ()  # keys of the call bars declared here
    about: str = ""  # for a result: the call id it answers


@dataclass(frozen=True, slots=True)
class Bar:
    """One tool call, from the row that declared it to the row that settled it."""

    key: str  # unique in the picture: "c<row>.<index>"
    id: str  # as declared
    name: str
    start: int  # row index
    end: int | None  # row index of its result or closure; None: open at the end
    fate: CallFate
    reason: str = ""  # why it was closed
    later: Later = Later.NONE
    later_row: int | None = None  # where the late result arrived, or the rewrite happened
    lane: int = 0

    @property
    def last(self) -> int:
        """The last row the bar covers (its late extension included)."""
        ends = [x for x in (self.end, self.later_row if self.later in (Later.LATE_NOTE, Later.LATE_DROPPED) else None) if x is not None]
        return max(ends) if ends else self.start

    def describe(self, line_of: Callable[[int], int]) -> str:
        def at(row: int) -> str:
            line = line_of(row)
            return f"line {line}" if line else "the end"

        head = f"{self.id} ({self.name}), declared at {at(self.start)}"
        if self.fate is CallFate.ANSWERED and self.end is not None:
            how = f"answered at {at(self.end)}"
        elif self.fate is CallFate.CLOSED and self.end is not None:
            how = f"closed at {at(self.end)}: {self.reason}"
        elif self.fate is CallFate.DROPPED:
            how = "dropped: cut mid-arguments, never sent"
        elif self.fate is CallFate.UNANSWERED:
            how = f"no tool message right after it ({self.reason})" if self.reason else "no tool message answers it"
        else:
            how = "still open at the end of the file: closed when the session is resumed"
        if self.later is not Later.NONE and self.later_row is not None:
            how += f"; {self.later.value} at {at(self.later_row)}"
        return f"{head}; {how}"


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of rows: a step (request to step end) or what a compaction summarized."""

    kind: str  # "step" or "compaction"
    start: int
    end: int
    label: str
    by: int = 0  # the compaction's own row


@dataclass(frozen=True, slots=True)
class Shown:
    """One message of a projection column, or a ghost where one is missing or left out."""

    role: str
    text: str
    row: int | None  # the timeline row it comes from
    calls: tuple[tuple[str, str], ...] = ()  # (id, name)
    call_id: str = ""  # a tool message's
    flags: tuple[str, ...] = ()  # "error", "synthetic"
    ghost: bool = False
    index: int | None = None  # the message's index in its list (None for a ghost)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    messages: tuple[Shown, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding, tied to both sides."""

    key: str  # "f1", "f2", ...
    rule: str
    level: str
    why: str
    rows: tuple[int, ...]
    bars: tuple[str, ...]
    messages: tuple[tuple[int, int], ...]  # (column, position in the column)
    notes: tuple[tuple[int, str], ...] = ()  # (row, a few words shown on that row)

    @property
    def title(self) -> str:
        return RULES[self.rule].title if self.rule in RULES else self.rule


@dataclass(frozen=True, slots=True)
class Picture:
    title: str
    subtitle: str
    rows: tuple[Row, ...]
    bars: tuple[Bar, ...]
    spans: tuple[Span, ...]
    columns: tuple[Column, ...]
    findings: tuple[Finding, ...]
    point: int | None  # the row of the projection point shown (None: after the last row)
    point_label: str
    notes: tuple[str, ...] = ()
    first_difference: int | None = None  # a position in the columns, when there are two

    @property
    def lanes(self) -> int:
        return 1 + max((b.lane for b in self.bars), default=-1)

    def line_of(self, row: int) -> int:
        return self.rows[row - 1].line if 1 <= row <= len(self.rows) else 0


# ---------------------------------------------------------------------------
# Findings before they are tied to the picture.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ghost:
    """A message a finding says is missing or left out: where (column, after which row), and what."""

    column: int
    text: str
    after_row: int | None = None  # placed after the last message from a row at or before it
    position: int | None = None  # or at this position of the column's own messages


@dataclass(frozen=True, slots=True)
class Found:
    """A finding as the checkers give it, before it is placed."""

    rule: str
    level: str
    why: str
    rows: tuple[int, ...] = ()
    calls: tuple[str, ...] = ()  # call ids, as declared or as sent
    messages: tuple[tuple[int, int], ...] = ()  # (column, message index)
    ghosts: tuple[Ghost, ...] = ()
    match_rows: bool = True  # also mark the messages that come from ``rows``
    notes: tuple[tuple[int, str], ...] = ()  # (row, a few words for that row of the timeline)


# ---------------------------------------------------------------------------
# The timeline of a canonical log.
# ---------------------------------------------------------------------------


def _short(text: str, n: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def rows_of(log: Sequence[Event], lines: Sequence[int]) -> list[Row]:
    """One row per event; ``lines[i]`` is the file's line of ``log[i]``."""
    rows: list[Row] = []
    for i, event in enumerate(log, 1):
        line = lines[i - 1] if i - 1 < len(lines) else 0
        rows.append(_row(i, line, event))
    return rows


def _row(i: int, line: int, e: Event) -> Row:
    if isinstance(e, SessionMeta):
        return Row(i, line, Kind.META, _short(e.system) or "(no system prompt)")
    if isinstance(e, TurnPrompt):
        return Row(i, line, Kind.PROMPT, _short(e.text))
    if isinstance(e, TurnSteer):
        return Row(i, line, Kind.STEER, _short(e.text))
    if isinstance(e, Notification):
        return Row(i, line, Kind.NOTIFICATION, _short(e.text))
    if isinstance(e, StepBegin):
        return Row(i, line, Kind.REQUEST, "a request is built here")
    if isinstance(e, Assistant):
        cut = "" if e.complete else " (stream cut)"
        calls = tuple(f"c{i}.{k}" for k in range(len(e.calls)))
        text = _short(e.text) if e.text else ("(calls only)" if e.calls else "(empty)")
        return Row(i, line, Kind.REPLY, text + cut, calls=calls)
    if isinstance(e, StepEnd):
        return Row(i, line, Kind.STEP_END, e.finish_reason)
    if isinstance(e, StepError):
        return Row(i, line, Kind.STEP_ERROR, _short(e.message) or "the provider failed the request")
    if isinstance(e, ToolResult):
        err = " (error)" if e.is_error else ""
        return Row(i, line, Kind.RESULT, _short(e.output) + err, about=e.call_id)
    if isinstance(e, Resume):
        return Row(i, line, Kind.RESUME, "the runtime restarted: whatever was in flight is lost")
    if isinstance(e, TurnCancel):
        return Row(i, line, Kind.CANCEL, "the user cancelled the turn")
    if isinstance(e, TurnEnd):
        return Row(i, line, Kind.TURN_END, "")
    if isinstance(e, Compaction):
        return Row(i, line, Kind.COMPACTION, _short(e.summary))
    if isinstance(e, Undo):
        return Row(i, line, Kind.UNDO, f"the last {e.count} turn(s) removed" if e.count > 1 else "the last turn removed")
    assert isinstance(e, Clear)
    return Row(i, line, Kind.CLEAR, "the whole context removed but the system prompt")


_LATER: Final = {LineFate.SUMMARIZED: Later.SUMMARIZED, LineFate.UNDONE: Later.UNDONE, LineFate.CLEARED: Later.CLEARED}


def bars_of(log: Sequence[Event], policy: Policy | None = None) -> list[Bar]:
    """Every declared call, with its fate, read from the ledger fed the whole log."""
    ledger = Ledger(policy=policy or Policy())
    rewritten: dict[int, tuple[Later, int]] = {}  # id(call) -> what rewrote it, where
    late: dict[int, tuple[Later, int]] = {}
    for row, event in enumerate(log, 1):
        ledger.feed(event)
        if isinstance(event, (Compaction, Undo, Clear)):
            for call in ledger.all_calls:
                if id(call) not in rewritten and call.status in (CallStatus.SUMMARIZED, CallStatus.GONE):
                    gone = ledger.fates.get(call.line)
                    rewritten[id(call)] = (_LATER.get(gone, Later.UNDONE) if gone is not None else Later.UNDONE, row)
        elif isinstance(event, ToolResult) and ledger.fates.get(row) in (LineFate.NOTE, LineFate.DROPPED_LATE):
            item = ledger.item_of_line.get(row)
            about = item.note_of if item is not None else None
            if about is None:
                about = next((n.note_of for n in ledger.dropped_notes if n.line == row), None)
            if about is not None and id(about) not in late:
                late[id(about)] = (Later.LATE_NOTE if ledger.fates.get(row) is LineFate.NOTE else Later.LATE_DROPPED, row)
    bars: list[Bar] = []
    for call in ledger.all_calls:
        if call.status is CallStatus.DROPPED:
            fate, end = CallFate.DROPPED, call.line
        elif call.result_line is not None:
            fate, end = CallFate.ANSWERED, call.result_line
        elif call.reason is not None and call.closed_line is not None:
            fate, end = CallFate.CLOSED, call.closed_line
        elif call.status is CallStatus.OPEN:
            fate, end = CallFate.OPEN, None
        else:  # summarized or discarded while open
            fate, end = CallFate.CLOSED, call.closed_line
        later, later_row = late.get(id(call)) or rewritten.get(id(call)) or (Later.NONE, None)
        reason = call.reason.value if call.reason is not None and fate is CallFate.CLOSED else ""
        if fate is CallFate.CLOSED and not reason and later_row is not None:
            reason = f"{later.value} while open"
        bars.append(Bar(f"c{call.line}.{call.index}", call.id, call.name, call.line, end, fate, reason, later, later_row))
    return place_lanes(bars)


def place_lanes(bars: Sequence[Bar]) -> list[Bar]:
    """Give each bar the lowest lane free over its rows (bars that overlap never share one)."""
    free_from: list[int] = []  # per lane: the first row it is free again
    out: list[Bar] = []
    for bar in bars:
        last = bar.last if bar.end is not None else 1 << 30
        lane = next((k for k, row in enumerate(free_from) if row <= bar.start), len(free_from))
        if lane == len(free_from):
            free_from.append(0)
        free_from[lane] = last + 1
        out.append(Bar(bar.key, bar.id, bar.name, bar.start, bar.end, bar.fate, bar.reason, bar.later, bar.later_row, lane))
    return out


def spans_of(log: Sequence[Event]) -> list[Span]:
    """Steps (a request to its step end or error) and what each compaction summarized."""
    spans: list[Span] = []
    step: int | None = None
    cut = 0
    for row, event in enumerate(log, 1):
        if isinstance(event, StepBegin):
            if step is not None:
                spans.append(Span("step", step, row - 1, "step"))
            step = row
        elif isinstance(event, (StepEnd, StepError)) and step is not None:
            spans.append(Span("step", step, row, "step"))
            step = None
        elif isinstance(event, Compaction):
            upto = min(event.upto, row - 1)
            if upto > cut:
                spans.append(Span("compaction", cut + 1, upto, f"summarized by the compaction at row {row}", by=row))
                cut = upto
    if step is not None:
        spans.append(Span("step", step, len(log), "step (open at the end)"))
    return spans


# ---------------------------------------------------------------------------
# Projection columns.
# ---------------------------------------------------------------------------


def shown(m: Message, row: int | None, index: int | None) -> Shown:
    if isinstance(m, ToolMessage):
        flags = tuple(f for f, on in (("error", m.is_error), ("synthetic", m.synthetic)) if on)
        return Shown("tool", _short(m.content), row, call_id=m.call_id, flags=flags, index=index)
    if isinstance(m, AssistantMessage):
        return Shown("assistant", _short(m.text), row, calls=tuple((c.id, c.name) for c in m.calls), index=index)
    if isinstance(m, SystemMessage):
        return Shown("system", _short(m.text), row, index=index)
    assert isinstance(m, UserMessage)
    return Shown("user", _short(m.text), row, index=index)


def column(title: str, messages: Sequence[tuple[Message, int | None]], note: str = "") -> Column:
    """A column of messages, each with the timeline row it comes from (None: none)."""
    return Column(title, tuple(shown(m, row, i) for i, (m, row) in enumerate(messages)), note)


def first_difference(a: Column, b: Column) -> int | None:
    def key(s: Shown) -> tuple[object, ...]:
        return (s.role, s.text, s.calls, s.call_id)

    for i in range(max(len(a.messages), len(b.messages))):
        if i >= len(a.messages) or i >= len(b.messages) or key(a.messages[i]) != key(b.messages[i]):
            return i
    return None


def missing_from(columns: Sequence[Column], other: int, reference: int) -> list[tuple[int, Ghost]]:
    """Ghosts in column ``other`` for each tool message of ``reference`` it lacks: ``(call id index, ghost)``."""
    have = {s.call_id for s in columns[other].messages if s.role == "tool"}
    out: list[tuple[int, Ghost]] = []
    for pos, s in enumerate(columns[reference].messages):
        if s.role == "tool" and s.call_id not in have:
            out.append((pos, Ghost(other, f"missing: the tool message for {s.call_id}", position=pos)))
    return out


# ---------------------------------------------------------------------------
# Tying findings to both sides.
# ---------------------------------------------------------------------------


def _same_call(a: str, b: str) -> bool:
    """A call id as declared and as sent (a renamed reuse is ``id#n``)."""
    return a == b or a.split("#", 1)[0] == b.split("#", 1)[0] and ("#" in a) != ("#" in b)


def place(
    rows: Sequence[Row],
    bars: Sequence[Bar],
    columns: Sequence[Column],
    found: Iterable[Found],
    point: int | None = None,
) -> tuple[tuple[Column, ...], tuple[Finding, ...]]:
    """Insert the ghosts into the columns and tie each finding to rows, bars and messages."""
    found = list(found)
    # 1. ghosts go in first: positions below are positions in the final columns
    # one ghost per (column, position, words): two findings about one missing message share it
    inserts: dict[int, dict[tuple[int, str], list[int]]] = {}  # column -> (position, words) -> finding numbers
    for n, f in enumerate(found):
        for g in f.ghosts:
            pos = g.position if g.position is not None else _after(columns[g.column], g.after_row)
            inserts.setdefault(g.column, {}).setdefault((min(pos, len(columns[g.column].messages)), g.text), []).append(n)
    final: list[Column] = []
    ghost_pos: dict[int, list[tuple[int, int]]] = {}  # finding number -> (column, position)
    old_to_new: list[list[int]] = []
    for c, col in enumerate(columns):
        pending = sorted(inserts.get(c, {}).items(), key=lambda t: (t[0][0], min(t[1])))
        messages: list[Shown] = []
        mapping: list[int] = []
        k = 0

        def put(words: str, owners: list[int]) -> None:
            for n in owners:
                ghost_pos.setdefault(n, []).append((c, len(messages)))
            messages.append(Shown("missing", words, None, ghost=True))

        for i, s in enumerate(col.messages):
            while k < len(pending) and pending[k][0][0] <= i:
                put(pending[k][0][1], pending[k][1])
                k += 1
            mapping.append(len(messages))
            messages.append(s)
        for (_, words), owners in pending[k:]:
            put(words, owners)
        final.append(Column(col.title, tuple(messages), col.note))
        old_to_new.append(mapping)
    # 2. each finding: its rows, the bars of its calls and of its rows, its messages (looked up by row and by call)
    by_row: dict[int, list[tuple[int, int]]] = {}
    by_call: dict[str, list[tuple[int, int, str]]] = {}
    for c, col in enumerate(final):
        for pos, s in enumerate(col.messages):
            if s.ghost:
                continue
            if s.row is not None:
                by_row.setdefault(s.row, []).append((c, pos))
            for cid in ([s.call_id] if s.call_id else []) + [i for i, _ in s.calls]:
                by_call.setdefault(_base(cid), []).append((c, pos, cid))
    bars_by_call: dict[str, list[Bar]] = {}
    bars_by_start: dict[int, list[Bar]] = {}
    for b in bars:
        bars_by_call.setdefault(_base(b.id), []).append(b)
        bars_by_start.setdefault(b.start, []).append(b)
    placed: list[tuple[Found, list[str], set[int], set[tuple[int, int]]]] = []
    generic: list[tuple[int, int, str]] = []  # (position in column 0, finding number, words)
    for n, f in enumerate(found):
        calls = set(f.calls)
        if calls:
            hit = {b.key: b for c in calls for b in bars_by_call.get(_base(c), []) if _same_call(b.id, c)}
        else:
            hit = {b.key: b for r in f.rows for b in bars_by_start.get(r, [])}
        hit_bars = [b.key for b in bars if b.key in hit]
        hit_rows = set(f.rows) or {b.start for b in hit.values()}
        msgs: set[tuple[int, int]] = set(ghost_pos.get(n, []))
        for c, i in f.messages:
            if 0 <= i < len(old_to_new[c]):
                msgs.add((c, old_to_new[c][i]))
        if f.match_rows:
            msgs.update(cp for r in f.rows for cp in by_row.get(r, []))
        msgs.update((c, pos) for x in calls for c, pos, cid in by_call.get(_base(x), []) if _same_call(cid, x))
        if not msgs and final:  # never one side only: say where nothing stands for it
            later = point is not None and bool(hit_rows) and min(hit_rows) > point
            words = "after the projection point shown: --at a later line shows it" if later else "nothing in this projection stands for it"
            generic.append((_after(final[0], max(hit_rows) if hit_rows else None), n, words))
        placed.append((f, hit_bars, hit_rows, msgs))
    if generic:  # insert them into column 0 at once, and move what comes after each
        generic.sort()
        col = final[0]
        messages = list(col.messages)
        for k, (pos, n, words) in enumerate(generic):
            messages.insert(pos + k, Shown("missing", words, None, ghost=True))
        final[0] = Column(col.title, tuple(messages), col.note)
        where = {n: pos + k for k, (pos, n, _) in enumerate(generic)}

        def moved(c: int, p: int) -> int:
            return p + sum(1 for q, _, _ in generic if q <= p) if c == 0 else p

        for n, (f, hit_bars, hit_rows, msgs) in enumerate(placed):
            shifted = {(c, moved(c, p)) for c, p in msgs}
            if n in where:
                shifted.add((0, where[n]))
            placed[n] = (f, hit_bars, hit_rows, shifted)
    out: list[Finding] = []
    for n, (f, hit_bars, hit_rows, msgs) in enumerate(placed):
        if not hit_rows:
            last = max((s.row for c, p in msgs for s in (final[c].messages[p],) if s.row is not None), default=len(rows))
            hit_rows.add(max(1, min(last, len(rows))))
        notes = tuple((r, t) for r, t in f.notes if 1 <= r <= len(rows))
        out.append(Finding(f"f{n + 1}", f.rule, f.level, f.why, tuple(sorted(hit_rows | {r for r, _ in notes})), tuple(hit_bars), tuple(sorted(msgs)), notes))
    return tuple(final), tuple(out)


def _base(call_id: str) -> str:
    return call_id.split("#", 1)[0]


def _after(col: Column, row: int | None) -> int:
    """The position just after the last message from a row at or before ``row`` (the end if ``row`` is None)."""
    if row is None:
        return len(col.messages)
    pos = 0
    for i, s in enumerate(col.messages):
        if s.row is not None and s.row <= row:
            pos = i + 1
    return pos


def rows_by_line(rows: Sequence[Row]) -> Mapping[int, list[int]]:
    """The rows of each line of the file."""
    out: dict[int, list[int]] = {}
    for r in rows:
        if r.line:
            out.setdefault(r.line, []).append(r.index)
    return out


@dataclass
class Builder:
    """Collects a picture's parts; :meth:`build` ties them together."""

    title: str
    subtitle: str
    rows: list[Row]
    bars: list[Bar]
    spans: list[Span] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    point: int | None = None
    point_label: str = ""
    notes: list[str] = field(default_factory=list)

    def build(self) -> Picture:
        diff = first_difference(self.columns[0], self.columns[1]) if len(self.columns) == 2 else None
        columns, findings = place(self.rows, self.bars, self.columns, self.found, self.point)
        if diff is not None and len(columns) == 2:  # the first difference, counted in the placed columns
            diff = _first_real_difference(columns[0], columns[1])
        return Picture(self.title, self.subtitle, tuple(self.rows), tuple(self.bars), tuple(self.spans), columns, findings, self.point, self.point_label, tuple(self.notes), diff)


def _first_real_difference(a: Column, b: Column) -> int | None:
    for i in range(max(len(a.messages), len(b.messages))):
        x = a.messages[i] if i < len(a.messages) else None
        y = b.messages[i] if i < len(b.messages) else None
        if x is None or y is None or (x.role, x.text, x.calls, x.call_id, x.ghost) != (y.role, y.text, y.calls, y.call_id, y.ghost):
            return i
    return None
