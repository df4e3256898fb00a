"""Repair a runtime's session file in its own format, streaming.

The reference projector already knows every place where a naive projection
of a log would not be sendable (its :class:`~ctxref.projector.Repair` list).
This module turns each of them into an edit of the *file*, so that the
runtime's own loader, reading the repaired file, sends a valid request:

* a call that was never answered gets a result record (an error, saying why)
  where the runtime expects one: before the event that closed it;
* a result that arrived after its call was closed is moved up to that place;
* an orphan result, a duplicate result, a result of an undone call: dropped;
* results are put in call order; user input that landed inside an exchange is
  moved after its results; a reused call id is renamed;
* an empty reply is dropped; a cut stream's half call is dropped (extension
  records only: no runtime writes half calls natively).

A file is repaired *as it will be resumed*: calls still open at the end of the
file are closed as if the runtime restarted there (``resume``).

Every line of the input is kept byte for byte unless a change names it, every
change names the input line, and a repaired file has nothing left to repair,
so repairing it again changes nothing.

How it streams (memory of the order of ``check``'s, not of the file):

1. *Trace*: the file is imported record by record and fed to the reference
   projector.  Kept: where each physical line starts (8 bytes a line), each
   event's lines and kind (about 9 bytes an event), the repairs, the calls of
   the exchanges a repair names, and the few events an edit rewrites (cut
   replies, compactions).  Never an output, a text or a thought.
2. *Plan*: the repairs become edits at slots of the input (:class:`_Plan`);
   the few lines an edit must read (a reply whose id is renamed, the call an
   error result copies its ids from) are read back by their offsets.
3. *Apply*: the input is copied to the output in runs between edits; a moved
   line is read from its offset when its slot comes.  Compactions are then
   pointed at the same place in the edited file (:func:`_renumber`): one more
   streamed import when the format counts in its own terms.
4. A round's edits can expose what only the next round can fix, so the edited
   file (an unnamed temporary file) is traced again, up to :data:`ROUNDS`
   times; line numbers are mapped back to the input through runs of lines.

Claude Code transcripts are a tree the importer indexes whole, and ``relink``
rewrites the edited file's links with both texts in hand: that format holds
the file in memory (its documented exception) through the same steps.
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import re
import shutil
import sys
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Final, NamedTuple, Protocol, cast

from ctxspec.errors import InvalidLog
from ctxspec.events import (
    EVENT_CLASSES,
    Assistant,
    Compaction,
    Event,
    Resume,
    StepBegin,
    StepEnd,
    StepError,
    ToolResult,
    event_to_dict,
)
from ctxspec.messages import UserMessage
from ctxspec.state import EVENT_KINDS, PHASE_TABLE, Phase, Reason

from ..projector import SYNTHETIC, Projector, Repair, RepairKind, _Call, _Entry, _Exchange
from . import EVENT_FORMATS, stream
from .base import GLUE, EventFormat, ImportReport, Record, count_ids, dumps, rename_ids
from .verdict import describe


@dataclass(frozen=True, slots=True)
class Change:
    """One edit, named by the input line it concerns (0: the end of the file, after line ``after``)."""

    line: int
    action: str  # inserted before, appended, moved, dropped, renamed, rewrote, relinked, renumbered
    detail: str
    after: int = 0  # for an edit at the end: the input's last line

    @property
    def where(self) -> str:
        if self.line:
            return f"line {self.line}"
        return f"at the end, after line {self.after}" if self.after else "at the end of the file"

    def __str__(self) -> str:
        return f"{self.where}: {self.action}: {self.detail}"


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What :func:`repair_stream` did; every line number is the input's."""

    format: str
    changes: tuple[Change, ...]
    #: Hazards the repaired file still has (empty when the repair is complete).
    remaining: tuple[Repair, ...]
    #: The same, described with the input's line numbers.
    remaining_text: tuple[str, ...]
    lines_in: int
    lines_out: int


@dataclass(frozen=True, slots=True)
class Repaired:
    """:func:`repair_text`'s answer: the repaired text beside the report's fields."""

    format: str
    text: str
    changes: tuple[Change, ...]
    #: Hazards the repaired file still has (empty when the repair is complete).
    remaining: tuple[Repair, ...]
    #: The same, described with the input's line numbers.
    remaining_text: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# The tracing projector: the repairs, and the calls of the exchanges they name.
# ---------------------------------------------------------------------------


class _CallInfo(NamedTuple):
    """What the planner needs of one declared call (never its arguments or output)."""

    orig: str
    sent: str
    name: str
    dropped: bool
    result_line: int | None


def _names_exchange(r: Repair, decl: int) -> bool:
    """Whether planning ``r`` needs the calls of the exchange declared at ``decl``."""
    kind = r.kind
    if kind is RepairKind.SYNTHETIC_RESULT:
        return r.refs[0] == decl
    if kind is RepairKind.INPUT_HELD:
        return r.refs[1] == decl
    return kind in (RepairKind.RESULTS_REORDERED, RepairKind.ID_RENAMED) and r.line == decl


#: What a traced context entry holds instead of its message: the planner reads no text.
_NO_TEXT: Final = UserMessage(text="")


class _Tracing(Projector):
    """The reference projector, keeping the calls of every exchange a repair
    names and noting which results reach a renamed call.

    An exchange's calls are looked at when it settles (``_forget``): every
    repair that names an exchange is made by then, and its calls no longer
    change in any way the planner reads.  Context entries keep their places
    but not their text (outputs, replies, notes), so what the trace holds
    does not grow with what the session said.
    """

    def _commit(self, entry: _Entry) -> None:
        entry.message = _NO_TEXT
        super()._commit(entry)

    def __init__(self) -> None:
        super().__init__(track_fates=False)
        self.renamed_results: list[tuple[int, str, str]] = []
        self.calls: dict[int, tuple[_CallInfo, ...]] = {}  # declaration line -> its calls
        self._declaring: dict[int, tuple[int, list[_Call]]] = {}  # unsettled: repairs before it, its calls

    def _assistant(self, event: Assistant, line: int) -> None:
        self._declaring[line] = (len(self.repairs), [])
        super()._assistant(event, line)
        if self._pending is None or self._pending.line != line:  # no exchange left open here
            self._declaring.pop(line, None)

    def _declared(self, call: _Call) -> None:
        super()._declared(call)
        self._declaring[call.line][1].append(call)

    def _forget(self, ex: _Exchange) -> None:
        start, calls = self._declaring.pop(ex.line, (len(self.repairs), []))
        if any(_names_exchange(self.repairs[i], ex.line) for i in range(start, len(self.repairs))):
            self.calls[ex.line] = tuple(_CallInfo(c.orig, c.sent, c.name, c.status.value == "dropped", c.result_line) for c in calls)
        super()._forget(ex)

    def _route(self, call_id: str) -> _Call | None:
        call = super()._route(call_id)
        if call is not None and call.sent != call.orig:
            self.renamed_results.append((self.line, call.orig, call.sent))
        return call


def hazards(log: Sequence[Event]) -> tuple[list[Repair], _Tracing]:
    """Every repair the reference projector makes on ``log`` resumed at its end.

    Lines past the log (``len(log) + 1``) mean: at the end of the file.
    """
    p = _Tracing()
    for event in log:
        p.feed(event)
    p.feed(Resume())
    return p.repairs, p


# ---------------------------------------------------------------------------
# Pass 1: the trace of one file, in arrays.
# ---------------------------------------------------------------------------

_CODE: Final = {cls: i for i, cls in enumerate(EVENT_CLASSES)}
#: Bytes copied at a time.
_CHUNK: Final = 1 << 18
_FOREIGN: Final = 0x80  # kind flag: the event came from an extension record


class _LineStarts:
    """A binary file read by lines (what :func:`~ctxref.formats.stream` calls),
    noting where each physical line starts.

    A line over the reader's limit comes in pieces; only its first counts.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.offsets: array[int] = array("Q")
        self.pos = 0
        self.at_start = True

    def readline(self, size: int = -1) -> bytes:
        raw = self.handle.readline(size)
        if raw:
            if self.at_start:
                self.offsets.append(self.pos)
            self.pos += len(raw)
            self.at_start = raw.endswith(b"\n")
        return raw


@dataclass(slots=True)
class _Trace:
    """One file imported and projected, kept as compactly as the planner allows."""

    report: ImportReport
    #: Physical line k starts at ``offsets[k - 1]``; the last entry is the file's end.
    offsets: array[int]
    #: Whether the file's last line ends with a newline.
    newline_at_end: bool
    #: Event c's lines are ``flat[starts[c - 1]:starts[c]]``.
    starts: array[int]
    flat: array[int]
    #: Event c's class (an index into ``EVENT_CLASSES``), with :data:`_FOREIGN`.
    kinds: bytearray
    #: The canonical lines of the ``step.begin`` events, ascending.
    begins: array[int]
    #: Every event's lines come at or after every earlier event's (true of
    #: every streaming importer; a tree's importer may reorder).
    ordered: bool
    #: The events an edit rewrites or a renumbering reads: compactions, cut replies.
    events: dict[int, Event]
    repairs: list[Repair]
    calls: dict[int, tuple[_CallInfo, ...]]
    renamed_results: list[tuple[int, str, str]]

    @property
    def n_lines(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.kinds)

    def lines(self, canonical: int) -> tuple[int, ...]:
        if 1 <= canonical <= len(self.kinds):
            return tuple(self.flat[self.starts[canonical - 1] : self.starts[canonical]])
        return ()

    def cls(self, canonical: int) -> type[Event] | None:
        if 1 <= canonical <= len(self.kinds):
            return EVENT_CLASSES[self.kinds[canonical - 1] & ~_FOREIGN]
        return None

    def native(self, canonical: int) -> bool:
        return not self.kinds[canonical - 1] & _FOREIGN


def _trace(handle: IO[bytes], format: str, *, lenient: bool, path: str) -> _Trace:
    """Import ``handle`` from its start and project it, resumed at its end (pass 1)."""
    handle.seek(0)
    report = ImportReport(path=path)
    reader = _LineStarts(handle)
    tracer = _Tracing()
    starts: array[int] = array("I", [0])
    flat: array[int] = array("I")
    kinds = bytearray()
    begins: array[int] = array("I")
    kept: dict[int, Event] = {}
    ordered, reach = True, 0
    # ``stream`` reads only ``readline``; a wrapper typed as the file it wraps.
    _name, events = stream(cast(IO[bytes], reader), report, format=format, lenient=lenient)
    for sourced in events:
        event, lines = sourced.event, sourced.lines
        canonical = len(kinds) + 1
        flat.extend(lines)
        starts.append(len(flat))
        kinds.append(_CODE[type(event)] | (0 if sourced.native else _FOREIGN))
        if lines:
            ordered = ordered and min(lines) >= reach
            reach = max(reach, *lines)
        if isinstance(event, StepBegin):
            begins.append(canonical)
        elif isinstance(event, Compaction):
            kept[canonical] = event
        before = len(tracer.repairs)
        tracer.feed(event)
        if isinstance(event, Assistant) and any(tracer.repairs[i].kind is RepairKind.HALF_CALL_DROPPED for i in range(before, len(tracer.repairs))):
            kept[canonical] = event
    if len(kinds) <= 1 and report.unreadable:
        raise InvalidLog("nothing usable: every record was unreadable", path=path)
    tracer.feed(Resume())
    reader.offsets.append(reader.pos)
    return _Trace(
        report, reader.offsets, reader.at_start, starts, flat, kinds, begins, ordered, kept,
        tracer.repairs, tracer.calls, tracer.renamed_results,
    )  # fmt: skip


class _Lines:
    """Random access to the physical lines of a traced file, by their offsets."""

    def __init__(self, handle: IO[bytes], offsets: array[int]) -> None:
        self.handle = handle
        self.offsets = offsets

    def raw(self, k: int) -> bytes:
        self.handle.seek(self.offsets[k - 1])
        return self.handle.read(self.offsets[k] - self.offsets[k - 1])

    def text(self, k: int) -> str:
        return _decode(self.raw(k))

    def head(self, k: int, chars: int) -> str:
        """The first ``chars`` characters of line ``k`` (no more than that is read)."""
        self.handle.seek(self.offsets[k - 1])
        return _decode(self.handle.read(min(4 * chars, self.offsets[k] - self.offsets[k - 1])))[:chars]

    def copy(self, first: int, last: int, out: IO[bytes]) -> None:
        """Lines ``first..last`` to ``out`` as they are, a bounded chunk at a time."""
        self.handle.seek(self.offsets[first - 1])
        left = self.offsets[last] - self.offsets[first - 1]
        while left:
            chunk = self.handle.read(min(left, _CHUNK))
            if not chunk:
                raise InvalidLog("the file changed while it was being repaired")
            out.write(chunk)
            left -= len(chunk)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _encode(text: str) -> bytes:
    """A line we wrote, as UTF-8.  A lone surrogate only comes from a JSON
    ``\\uXXXX`` escape we parsed; it is escaped again."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


# ---------------------------------------------------------------------------
# The plan: edits at slots.  Slot k is "just before input line k"; slot n+1 is
# the end of the file.  Items at one slot go out results first, then input.
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    n_lines: int
    inserts: dict[int, list[tuple[int, int, str]]] = field(default_factory=lambda: defaultdict(list))  # slot -> (prio, seq, text)
    moves: dict[int, list[tuple[int, int, int]]] = field(default_factory=lambda: defaultdict(list))  # slot -> (prio, seq, line)
    moved: set[int] = field(default_factory=set)
    dropped: set[int] = field(default_factory=set)
    renames: dict[int, list[tuple[str, str, int | None]]] = field(default_factory=lambda: defaultdict(list))
    rewrites: dict[int, tuple[Event, Event]] = field(default_factory=dict)  # extension records: old, new event
    dropped_steps: set[int] = field(default_factory=set)  # canonical lines of dropped empty steps (their begin or reply)
    cut_to: dict[int, int] = field(default_factory=dict)  # compaction line -> the canonical line it now ends at
    changes: list[Change] = field(default_factory=list)
    left: list[Repair] = field(default_factory=list)
    seq: int = 0

    def insert(self, slot: int, text: str, prio: int = 0) -> None:
        self.seq += 1
        self.inserts[slot].append((prio, self.seq, text))

    def move(self, line: int, slot: int, prio: int = 0) -> bool:
        if line in self.moved or line in self.dropped or line == 0:
            return False
        self.seq += 1
        self.moved.add(line)
        self.moves[slot].append((prio, self.seq, line))
        return True

    def drop(self, line: int, why: str) -> None:
        if line and line not in self.dropped:
            self.dropped.add(line)
            self.changes.append(Change(line, "dropped", why))


class _Where:
    """Canonical lines of a trace mapped to slots of its input."""

    def __init__(self, trace: _Trace) -> None:
        self.trace = trace
        self.n = trace.n_lines

    def lines(self, canonical: int) -> tuple[int, ...]:
        return self.trace.lines(canonical)

    def before(self, canonical: int) -> int:
        if canonical > self.trace.n_events:
            return self.n + 1
        lines = self.lines(canonical)
        return lines[0] if lines else 1

    def after(self, canonical: int) -> int:
        lines = self.lines(canonical)
        return max(lines) + 1 if lines else 1

    def only(self, canonical: int) -> int:
        """The input line of a single-record event, or 0 when it shares or spans lines.

        Events from one record are neighbours in the log, so only they are looked at.
        """
        lines = self.lines(canonical)
        if len(lines) != 1:
            return 0
        for step in (-1, 1):
            if lines[0] in self.lines(canonical + step):
                return 0
        return lines[0]

    def sharing(self, group: Sequence[int], lines: set[int]) -> Iterator[int]:
        """The events outside ``group`` with a line in ``lines``.

        In an ordered trace they are within the group's span or next to it;
        otherwise every event is looked at.
        """
        trace = self.trace
        if not trace.ordered:
            candidates: Iterator[int] = iter(range(1, trace.n_events + 1))
        else:
            lo, hi = min(group), max(group)
            candidates = itertools.chain(
                range(lo + 1, hi),
                itertools.takewhile(lambda c: not trace.lines(c) or max(trace.lines(c)) >= min(lines), range(lo - 1, 0, -1)),
                itertools.takewhile(lambda c: not trace.lines(c) or min(trace.lines(c)) <= max(lines), range(hi + 1, trace.n_events + 1)),
            )
        return (c for c in candidates if c not in group and not lines.isdisjoint(trace.lines(c)))


def _call_name(calls: Sequence[_CallInfo], sent: str, orig_of: dict[str, str]) -> str:
    for c in calls:
        if c.orig == sent or c.orig == orig_of.get(sent):
            return c.name
    return "tool"


def _plan(trace: _Trace, fmt: EventFormat, physical: _Lines) -> _Plan:
    repairs = trace.repairs
    where = _Where(trace)
    plan = _Plan(trace.n_lines)
    orig_of = {r.to: r.call for r in repairs if r.kind is RepairKind.ID_RENAMED}

    late: dict[tuple[str, int], Repair] = {}
    for r in repairs:
        if r.kind is RepairKind.LATE_NOTE and r.refs and r.refs[0]:
            late.setdefault((r.call, r.refs[0]), r)
    used_late: set[int] = set()

    # Exchanges whose tool block is not whole and in order where it should be.
    synthetic: dict[int, list[Repair]] = defaultdict(list)  # declaration line -> its synthetic results
    held: dict[int, int] = {}  # declaration line -> the first user input that landed inside it
    reordered: set[int] = set()
    for r in repairs:
        if r.kind is RepairKind.SYNTHETIC_RESULT:
            synthetic[r.refs[0]].append(r)
        elif r.kind is RepairKind.INPUT_HELD and trace.cls(r.line) is not ToolResult:
            held[r.refs[1]] = min(held.get(r.refs[1], r.line), r.line)
        elif r.kind is RepairKind.RESULTS_REORDERED:
            reordered.add(r.line)
    for decl in sorted(synthetic.keys() | held.keys() | reordered):
        calls = trace.calls.get(decl, ())
        closed = synthetic.get(decl, [])
        if decl in held:  # the block goes before the input that interrupted it
            slot = where.before(held[decl])
            there = f"to just before the user input on line {slot}, which interrupted its exchange"
        elif closed:  # before the event that closed the exchange, or after a cut reply
            slot = where.after(decl) if closed[0].line == decl else where.before(closed[0].line)
            there = f"to where its exchange was closed ({_at(where, closed[0].line)})"
        else:
            slot = max(where.after(c.result_line) for c in calls if c.result_line is not None)
            there = "after the exchange's last result"
        _settle(plan, where, fmt, physical, decl, slot, there, closed, calls, late, used_late, orig_of)
    for r in repairs:
        if r.kind in (RepairKind.SYNTHETIC_RESULT, RepairKind.LATE_NOTE, RepairKind.INPUT_HELD, RepairKind.RESULTS_REORDERED):
            continue  # above, and late results not claimed there below
        elif r.kind in (RepairKind.ORPHAN_DROPPED, RepairKind.UNDONE_RESULT_DROPPED):
            _drop_event(plan, where, r, f"{r.kind.value}: {r.detail}")
        elif r.kind is RepairKind.ID_RENAMED:
            _rename_call(plan, where, fmt, physical, r, trace.calls.get(r.line, ()))
        elif r.kind is RepairKind.EMPTY_REPLY_DROPPED:
            _drop_step(plan, where, r)
        elif r.kind is RepairKind.HALF_CALL_DROPPED:
            old = trace.events.get(r.line)
            src = where.only(r.line)
            if isinstance(old, Assistant) and src and _rewritable(trace, r.line, fmt):
                plan.rewrites[src] = (old, Assistant(text=old.text, calls=old.calls[:-1], complete=True))
                plan.changes.append(Change(src, "rewrote", f"half-streamed call {r.call} removed from the cut reply"))
            else:
                plan.left.append(r)
        elif r.kind is RepairKind.EXCHANGE_KEPT_WHOLE:
            old = trace.events.get(r.line)
            src = where.only(r.line)
            recountable = _rewritable(trace, r.line, fmt) or hasattr(fmt, "compaction_counter")
            if isinstance(old, Compaction) and src and recountable and r.refs[0] > 1:
                plan.cut_to[src] = min(plan.cut_to.get(src, old.upto), r.refs[0] - 1)
                plan.changes.append(Change(src, "rewrote", f"compaction ends before the exchange it cut ({_at(where, r.refs[0])})"))
            elif isinstance(old, Compaction) and getattr(fmt, "compaction_covers_before", False) and _move_all(plan, where.lines(r.line), where.before(r.refs[0])):
                plan.changes.append(Change(where.lines(r.line)[0], "moved", f"compaction moved before the exchange it cut ({_at(where, r.refs[0])})"))
            else:
                plan.left.append(r)
    for r in repairs:
        if r.kind is RepairKind.LATE_NOTE and r.line not in used_late:
            _drop_event(plan, where, r, f"{r.kind.value}: {r.detail}")
    for line, orig, sent in trace.renamed_results:
        for src in where.lines(line):
            if src not in plan.dropped:
                plan.renames[src].append((orig, sent, None))
                plan.changes.append(Change(src, "renamed", f"result of the renamed call: {orig} -> {sent}"))
    for bad in trace.report.unreadable:
        plan.drop(bad.line, f"unreadable: {bad.why}")
    for note in trace.report.notes:
        if "truncated" in note.why:
            plan.drop(note.line, f"truncated last line removed: {physical.head(note.line, 120)!r}")
    return plan


def _settle(
    plan: _Plan,
    where: _Where,
    fmt: EventFormat,
    physical: _Lines,
    decl: int,
    slot: int,
    there: str,
    closed: list[Repair],
    calls: Sequence[_CallInfo],
    late: dict[tuple[str, int], Repair],
    used_late: set[int],
    orig_of: dict[str, str],
) -> None:
    """Give every call of one exchange its result at ``slot``, in call order.

    Results already in place (before the slot, in order) stay.  From the
    first call that is not, every result goes to the slot: a real result is
    moved there, a late one moved up, and a call with neither gets an error
    result saying why it has none.
    """
    synthetic = {r.call: r for r in closed}
    last_kept = 0
    moving = False
    for call in calls:
        if call.dropped:
            continue
        src = where.only(call.result_line) if call.result_line is not None else 0
        if call.result_line is not None and not moving and src and last_kept < src < slot:
            last_kept = src
            continue
        moving = True
        if call.result_line is not None:
            if src and plan.move(src, slot):
                plan.changes.append(Change(src, "moved", f"result for {call.sent} moved {there}, in call order"))
            continue
        r = synthetic.get(call.sent)
        if r is None:
            continue
        moved = late.get((r.call, r.line))
        if moved is not None and (src := where.only(moved.line)) and plan.move(src, slot):
            used_late.add(moved.line)
            plan.changes.append(Change(src, "moved", f"late result for {r.call} moved {there}, in call order"))
            continue
        reason = Reason(r.detail.rsplit(": ", 1)[1])
        name = _call_name(calls, r.call, orig_of)
        event = ToolResult(call_id=r.call, output=SYNTHETIC[reason], is_error=True)
        near = _call_record(physical, where.lines(decl), orig_of.get(r.call, r.call), fmt.id_keys)
        plan.insert(slot, fmt.result_record(event, name, near))
        at_end = slot > where.n
        plan.changes.append(Change(0 if at_end else slot, "appended" if at_end else "inserted before", f"error result for {r.call} ({name}): {reason.value}"))


def _rename_call(plan: _Plan, where: _Where, fmt: EventFormat, physical: _Lines, r: Repair, calls: Sequence[_CallInfo]) -> None:
    """Rename one reused id in the record(s) of its reply: the k-th call with that id."""
    k = [c.orig for c in calls[: next(i for i, c in enumerate(calls) if c.sent == r.to)]].count(r.call)
    for line in where.lines(r.line):
        here = count_ids(json.loads(physical.raw(line)), fmt.id_keys, r.call)
        if k < here:
            plan.renames[line].append((r.call, r.to, k))
            plan.changes.append(Change(line, "renamed", f"reused call id {r.call} -> {r.to}"))
            return
        k -= here


def _move_all(plan: _Plan, lines: tuple[int, ...], slot: int) -> bool:
    """Move every line of one event to ``slot``, in order, or none of them."""
    if not lines or any(line in plan.moved or line in plan.dropped for line in lines):
        return False
    for line in lines:
        plan.move(line, slot, prio=-1)
    return True


def _rewritable(trace: _Trace, canonical: int, fmt: EventFormat) -> bool:
    """Whether the record holds the canonical event itself (ours, or an extension record)."""
    return fmt.name == "ctxcontract" or not trace.native(canonical)


def _at(where: _Where, canonical: int) -> str:
    if canonical > where.trace.n_events:
        return "the end of the file"
    return f"line {where.before(canonical)}"


def _drop_event(plan: _Plan, where: _Where, r: Repair, why: str) -> None:
    src = where.only(r.line)
    if src:
        plan.drop(src, why)
    else:
        plan.left.append(r)


#: Event kinds that leave a step where it is, in flight or replied (the phase table says which).
_STEP_NEUTRAL: Final = frozenset(k for k in EVENT_KINDS if PHASE_TABLE[Phase.STEP][k] is Phase.STEP and PHASE_TABLE[Phase.REPLIED][k] is Phase.REPLIED)


def _keeps_step(cls: type[Event] | None) -> bool:
    return cls is not None and cls.type in _STEP_NEUTRAL


def _step_of(trace: _Trace, end: int) -> int:
    """The canonical line of the step.begin a step end at ``end`` ends (0: none)."""
    i = bisect.bisect_left(trace.begins, end)
    return trace.begins[i - 1] if i else 0


def _drop_step(plan: _Plan, where: _Where, r: Repair) -> None:
    """Drop an empty reply with the step.begin before it and the step end after it.

    Step and turn boundaries that share a record with them are glue the
    importer infers again; a record with anything else on it is left alone.
    When such glue ended the previous step, the dropped step's own end stays
    to end that one.
    """
    trace = where.trace
    before = r.line - 1
    while _keeps_step(trace.cls(before)):
        before -= 1
    group = [before, r.line] if trace.cls(before) is StepBegin else [r.line]

    def around(group: list[int]) -> tuple[set[int], list[tuple[int, type[Event]]]]:
        """The input lines of ``group``, and the other events on those lines."""
        lines = {line for c in group for line in where.lines(c)}
        return lines, [(c, cast(type[Event], trace.cls(c))) for c in sorted(where.sharing(group, lines))] if lines else []

    lines, rest = around(group)
    if not lines or not all(issubclass(e, GLUE) for _c, e in rest):
        plan.left.append(r)
        return
    after = r.line + 1
    while _keeps_step(trace.cls(after)):
        after += 1
    plan.dropped_steps.add(group[0])
    ends_live_step = any(e is StepEnd and _step_of(trace, c) not in plan.dropped_steps for c, e in rest)
    if trace.cls(after) in (StepEnd, StepError) and not ends_live_step:
        wider, wider_rest = around([*group, after])
        if all(issubclass(e, GLUE) for _c, e in wider_rest):
            lines = wider
    for line in sorted(lines):
        plan.drop(line, "empty reply dropped (nothing in it could be sent)")


def _call_record(physical: _Lines, lines: tuple[int, ...], call_id: str, keys: frozenset[str]) -> Record | None:
    """The record of a reply that declares ``call_id`` (else the reply's last record)."""
    records = [rec for line in lines if (rec := _record(physical, line)) is not None]
    for rec in records:
        if count_ids(rec.obj, keys, call_id):
            return rec
    return records[-1] if records and records[-1].line == lines[-1] else None


def _record(physical: _Lines, line: int) -> Record | None:
    try:
        obj = json.loads(physical.raw(line))
    except (ValueError, RecursionError):
        return None
    return Record(line, obj) if isinstance(obj, dict) else None


# ---------------------------------------------------------------------------
# Applying the plan: the input copied to the output in runs between edits.
# ---------------------------------------------------------------------------


def _rewrite_ext(raw: str, old: Event, new: Event) -> str:
    """Replace the canonical event inside an extension record."""
    old_d, new_d = event_to_dict(old), event_to_dict(new)

    def swap(obj: object) -> object:
        if isinstance(obj, dict) and all(obj.get(k) == v for k, v in old_d.items()):
            return new_d
        if isinstance(obj, dict):
            return {k: swap(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [swap(v) for v in obj]
        return obj

    return dumps(swap(json.loads(raw)))


class _Runs:
    """Which line of another text each line of a text is, as runs of lines.

    Run i starts at line ``first[i]`` and is line ``source[i]`` onwards of the
    other text (0: inserted lines).  Edits are few, so runs are few.
    """

    def __init__(self) -> None:
        self.first: array[int] = array("Q")
        self.source: array[int] = array("Q")
        self.total = 0

    @classmethod
    def identity(cls, n: int) -> _Runs:
        runs = cls()
        runs.add(1, n)
        return runs

    def add(self, source: int, count: int = 1) -> None:
        if count <= 0:
            return
        if self.first:
            last = self.source[-1]
            length = self.total + 1 - self.first[-1]
            if (source == 0 and last == 0) or (source and last and source == last + length):
                self.total += count
                return
        self.first.append(self.total + 1)
        self.source.append(source)
        self.total += count

    def _run(self, line: int) -> int:
        return bisect.bisect_right(self.first, line) - 1

    def __call__(self, line: int) -> int:
        """The other text's line of ``line`` (0: inserted)."""
        if not 1 <= line <= self.total:
            return 0
        i = self._run(line)
        return self.source[i] + line - self.first[i] if self.source[i] else 0

    def named(self, line: int) -> int:
        """The other text's line of ``line``, or of the next line that has
        one (an inserted line is named by what follows it); 0: the end of the file."""
        if not 1 <= line <= self.total:
            return 0
        i = self._run(line)
        if self.source[i]:
            return self.source[i] + line - self.first[i]
        return self.source[i + 1] if i + 1 < len(self.first) else 0

    def then(self, earlier: _Runs) -> _Runs:
        """This map after ``earlier`` (which maps the other text onwards)."""
        out = _Runs()
        for i, first in enumerate(self.first):
            end = self.first[i + 1] if i + 1 < len(self.first) else self.total + 1
            source, count = self.source[i], end - first
            while count > 0:
                if not source:
                    out.add(0, count)
                    break
                j = earlier._run(source)
                stop = earlier.first[j + 1] if j + 1 < len(earlier.first) else earlier.total + 1
                piece = min(count, stop - source)
                out.add(earlier.source[j] + source - earlier.first[j] if earlier.source[j] else 0, piece)
                source, count = source + piece, count - piece
        return out


@dataclass(slots=True)
class _Applied:
    """What the edit pass wrote, as far as later steps need it."""

    #: Each output line's input line (0: inserted).
    runs: _Runs = field(default_factory=_Runs)
    #: Asked-for input lines k: the output's length once k (and the results
    #: placed right after it) was passed.
    passed: dict[int, int] = field(default_factory=dict)
    #: Asked-for input lines: where they went, as (output line, byte offset, bytes).
    placed: dict[int, tuple[int, int, bytes]] = field(default_factory=dict)
    lines: int = 0
    bytes: int = 0
    newline_at_end: bool = True


class _Writer:
    """The output of the edit pass, one line or a run of lines at a time."""

    def __init__(self, out: IO[bytes], applied: _Applied) -> None:
        self.out = out
        self.a = applied

    def _open(self) -> None:
        if not self.a.newline_at_end:  # only the input's last line can lack one
            self.out.write(b"\n")
            self.a.bytes += 1
            self.a.newline_at_end = True

    def line(self, raw: bytes, source: int, *, end_line: bool = True) -> int:
        self._open()
        if end_line and not raw.endswith(b"\n"):
            raw += b"\n"
        self.out.write(raw)
        at = self.a.bytes
        self.a.bytes += len(raw)
        self.a.lines += 1
        self.a.runs.add(source)
        self.a.newline_at_end = raw.endswith(b"\n")
        return at

    def run(self, physical: _Lines, first: int, last: int, newline_at_end: bool) -> None:
        if last < first:
            return
        self._open()
        physical.copy(first, last, self.out)
        self.a.bytes += physical.offsets[last] - physical.offsets[first - 1]
        self.a.lines += last - first + 1
        self.a.runs.add(first, last - first + 1)
        self.a.newline_at_end = newline_at_end


def _apply(plan: _Plan, trace: _Trace, fmt: EventFormat, physical: _Lines, out: IO[bytes], watch: set[int], passed: set[int]) -> _Applied:
    """Write the edited file: ``watch`` lines are noted where they go, and
    ``passed`` lines how far the output reached once they were passed."""
    n = plan.n_lines
    applied = _Applied()
    w = _Writer(out, applied)
    points = set(plan.inserts) | set(plan.moves) | plan.moved | plan.dropped | set(plan.renames) | set(plan.rewrites) | watch
    points |= {k + 1 for k in passed}
    points = {k for k in points if 1 <= k <= n}
    points.add(n + 1)
    done = 0  # input lines written or skipped
    for k in sorted(points):
        w.run(physical, done + 1, k - 1, newline_at_end=k - 1 < n or trace.newline_at_end)
        items: list[tuple[int, int, bytes, int]] = [(prio, seq, _encode(text), 0) for prio, seq, text in plan.inserts.get(k, ())]
        items += [(prio, seq, _line_bytes(physical, src, plan, fmt), src) for prio, seq, src in plan.moves.get(k, ())]
        for _prio, _seq, raw, src in sorted(items):
            at = w.line(raw, src)
            if src in watch:
                applied.placed[src] = (applied.lines, at, raw if raw.endswith(b"\n") else raw + b"\n")
        if k - 1 in passed:  # results placed right after line k-1 belong with what precedes them
            applied.passed[k - 1] = applied.lines
        if k <= n and k not in plan.dropped and k not in plan.moved:
            raw = _line_bytes(physical, k, plan, fmt)
            at = w.line(raw, k, end_line=False)
            if k in watch:
                applied.placed[k] = (applied.lines, at, raw)
        done = k
    return applied


def _line_bytes(physical: _Lines, k: int, plan: _Plan, fmt: EventFormat) -> bytes:
    raw = physical.raw(k)
    if k not in plan.renames and k not in plan.rewrites:
        return raw
    text = _decode(raw)
    ending = text[len(text.rstrip("\r\n")) :]
    body = text[: len(text) - len(ending)]
    if k in plan.rewrites:
        body = _rewrite_ext(body, *plan.rewrites[k])
    if k in plan.renames:
        obj: object = json.loads(body)
        for old, new, nth in sorted(plan.renames[k], key=lambda r: -1 if r[2] is None else -r[2]):  # later ones first
            obj = rename_ids(obj, fmt.id_keys, old, new, nth)
        body = dumps(obj)
    return _encode(body + (ending or "\n"))


# ---------------------------------------------------------------------------
# After the edit: a tree format relinks, compactions are renumbered.
# ---------------------------------------------------------------------------


class _Relinking(Protocol):
    def relink(self, original: str, lines: Sequence[str]) -> list[str]: ...


class _Counter(Protocol):
    """A format's count of its own context, fed an edited file's events in order."""

    def feed(self, event: Event, line: int) -> None: ...

    def recount(self, raw: str, upto: int) -> str | None: ...


class _Recounting(Protocol):
    def compaction_counter(self) -> _Counter: ...


def _relink(fmt: _Relinking, original: IO[bytes], edited: IO[bytes], applied: _Applied, plan: _Plan, out: IO[bytes]) -> None:
    """Put moved and inserted lines on the chain the runtime follows (in memory: a tree format's exception)."""
    original.seek(0)
    edited.seek(0)
    lines = _split_lines(_decode(edited.read()))
    linked = fmt.relink(_decode(original.read()), lines)
    position = 0
    by_line = {line: src for src, (line, _at, _raw) in applied.placed.items()}
    for i, (raw, new) in enumerate(zip(lines, linked), start=1):
        data = _encode(new)
        if raw != new and applied.runs(i):
            plan.changes.append(Change(applied.runs(i), "relinked", "parent set to the conversation entry before it in the file"))
        if i in by_line:
            applied.placed[by_line[i]] = (i, position, data)
        out.write(data)
        position += len(data)
    applied.bytes = position


def _split_lines(text: str) -> list[str]:
    """Physical lines, each with its ``\n`` (lines end at ``\n`` only, as the readers count them)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass(frozen=True, slots=True)
class _Renumbering:
    """One compaction to point at the same place in the edited file."""

    line: int  # in the input
    event: Compaction
    native: bool
    #: The input line whose ``passed`` says how far the cover reaches (0:
    #: nothing): the line before the first uncovered event's first record (a
    #: record can hold several events: one left uncovered keeps the whole
    #: record out), else the last covered event's last line.
    covered_to: int


def _renumberings(trace: _Trace, fmt: EventFormat, plan: _Plan) -> list[_Renumbering]:
    """The compactions :func:`_renumber` will rewrite, and the input lines it needs passed."""
    recount = hasattr(fmt, "compaction_counter")
    out: list[_Renumbering] = []
    for canonical, event in trace.events.items():
        lines = trace.lines(canonical)
        if not isinstance(event, Compaction) or len(lines) != 1:
            continue
        native = trace.native(canonical) and fmt.name != "ctxcontract"
        if native and not recount:
            continue
        upto = plan.cut_to.get(lines[0], event.upto)
        nxt = trace.lines(upto + 1) if upto < trace.n_events else ()
        if nxt:
            out.append(_Renumbering(lines[0], event, native, min(nxt) - 1))
        else:
            covered = trace.lines(upto)
            out.append(_Renumbering(lines[0], event, native, max(covered) if covered else 0))
    return out




def _renumber(jobs: list[_Renumbering], applied: _Applied, fmt: EventFormat, plan: _Plan, edited: IO[bytes], out: IO[bytes]) -> bool:
    """Point every compaction at the same place in the edited file.

    A compaction covers the context up to a place; edits move places.  Each
    compaction is made to cover, in the output, exactly what it covered in the
    input (up to where a repair cut it back, :attr:`_Plan.cut_to`), results
    placed right after that included.  Canonical and extension records carry
    a line number we rewrite; a format's native record is rewritten by the
    format's counter (``compaction_counter``) when it has one.

    Writes the renumbered file to ``out`` when anything changed, and says so.
    """
    todo: list[_Placed] = []
    for job in jobs:
        if job.line in applied.placed:
            here, at, raw = applied.placed[job.line]
            text = _decode(raw)
            ending = text[len(text.rstrip("\r\n")) :]
            cover = applied.passed.get(job.covered_to, 0) if job.covered_to else 0
            todo.append(_Placed(job, here, at, len(raw), text[: len(text) - len(ending)], ending, cover))
    if not todo:
        return False
    uptos: dict[int, int] = {p.here: p.cover for p in todo}  # canonical lines are the file's lines
    found: dict[int, str | None] = {}
    if fmt.name != "ctxcontract":
        uptos, found = _read_edited(edited, fmt, {p.here: p for p in todo})
    edits: dict[int, tuple[int, bytes]] = {}  # byte offset -> (old length, new bytes)
    for p in todo:
        if p.job.native:
            body = found.get(p.here)
            if body is None:
                continue
        else:
            body = _rewrite_ext(p.body, p.job.event, Compaction(summary=p.job.event.summary, upto=uptos[p.here]))
        if body != p.body:
            edits[p.at] = (p.length, _encode(body + p.ending))
            if p.job.line not in plan.cut_to:  # a cut compaction is already named
                plan.changes.append(Change(p.job.line, "renumbered", "compaction points at the same place in the edited file"))
    if not edits:
        return False
    edited.seek(0)
    position = 0
    for at in sorted(edits):
        _copy_bytes(edited, out, at - position)
        length, new = edits[at]
        edited.seek(at + length)
        out.write(new)
        position = at + length
    shutil.copyfileobj(edited, out, _CHUNK)
    return True


@dataclass(frozen=True, slots=True)
class _Placed:
    """A compaction to renumber, where the edit pass put it."""

    job: _Renumbering
    here: int  # output line
    at: int  # its byte offset in the output
    length: int  # its bytes, ending included
    body: str
    ending: str
    cover: int  # the output line its cover reaches


def _copy_bytes(src: IO[bytes], out: IO[bytes], count: int) -> None:
    while count:
        chunk = src.read(min(count, _CHUNK))
        if not chunk:
            raise InvalidLog("the edited file ended early")
        out.write(chunk)
        count -= len(chunk)


def _read_edited(edited: IO[bytes], fmt: EventFormat, wanted: dict[int, _Placed]) -> tuple[dict[int, int], dict[int, str | None]]:
    """Import the edited file, streaming, for what renumbering needs in its terms.

    For each compaction record (by its output line): ``upto``, the last
    canonical line whose records all come no later than the output line its
    cover reaches (1 if none); and for a native record, the record recounted
    by the format's counter fed every event before the record's.  Only the
    events before those records matter, so the import is lenient (stale
    compaction records may not import yet) and a file where nothing else is
    readable is an empty import, not an error.

    In an ordered import (every streaming importer's) each answer is known
    when the compaction's event comes, so one pass does; otherwise a second
    pass recounts with every ``upto`` known.  Memory: 4 bytes an event.
    """
    maxima: array[int] = array("I")  # each event's last line (0: none)
    at: dict[int, int] = {}  # a compaction's output line -> its canonical line
    found: dict[int, str | None] = {}
    natives = {here for here, p in wanted.items() if p.job.native}
    make_counter = cast(_Recounting, fmt).compaction_counter if natives else None

    def upto_of(cover: int, stop: int) -> int:
        return next((i for i in range(stop - 1, 0, -1) if 0 < maxima[i - 1] <= cover), 1)

    def events() -> Iterator[tuple[int, Event, tuple[int, ...]]]:
        edited.seek(0)
        _name, imported = stream(edited, ImportReport(path="<repair>"), format=fmt.name, lenient=True)
        for i, sourced in enumerate(imported, start=1):
            yield i, sourced.event, sourced.lines

    counter = make_counter() if make_counter is not None else None
    ordered, reach = True, 0
    for i, event, lines in events():
        maxima.append(max(lines) if lines else 0)
        if lines:
            ordered = ordered and min(lines) >= reach
            reach = max(reach, *lines)
        for here in lines:
            if here in wanted and here not in at:
                at[here] = i
                cover = wanted[here].cover
                if counter is not None and here in natives and ordered and cover < here:
                    found[here] = counter.recount(wanted[here].body, upto_of(cover, i))
        if counter is not None:
            counter.feed(event, i)
    # Ordered, nothing after a compaction's event reaches back before it.
    uptos = {
        here: upto_of(p.cover, at[here] if ordered and here in at and p.cover < here else len(maxima) + 1)
        for here, p in wanted.items()
    }
    late = [here for here in natives if here in at and (here not in found or not ordered)]
    if late and make_counter is not None:
        counter = make_counter()
        for i, event, _lines in events():
            for here in late:
                if at[here] == i:
                    found[here] = counter.recount(wanted[here].body, uptos[here])
            counter.feed(event, i)
    return uptos, found


# ---------------------------------------------------------------------------
# Rounds.
# ---------------------------------------------------------------------------

#: Rounds of repair at most: a round's edits can expose what only the next can fix
#: (a native compaction that now cuts an exchange the first round completed).
ROUNDS: Final = 3


def repair_stream(source: IO[bytes], format: str, sink: IO[bytes], *, lenient: bool = False, path: str = "<input>") -> RepairReport:
    """Repair the session file ``source`` (seekable, binary) into ``sink``.

    ``source`` is never written; ``sink`` gets the repaired bytes (the input's
    own bytes when there is nothing to repair).  Memory is of the order of
    ``check``'s: the current context, per-call-id routing, a few bytes a line
    and an event, and what the edits themselves need; rounds after the first
    read and write unnamed temporary files.  Leniently, unreadable lines are
    dropped (each named); strictly, the first is a one-line
    :class:`~ctxspec.errors.InvalidLog`.
    """
    fmt = EVENT_FORMATS.get(format)
    if fmt is None:
        raise InvalidLog(f"no repair for format {format!r}", path=path)
    current: IO[bytes] = source
    temps: list[IO[bytes]] = []
    origin = _Runs()  # the input line of each line of ``current``
    changes: list[Change] = []
    left: list[Repair] = []
    lines_in = 0
    try:
        for round in range(ROUNDS + 1):
            try:
                trace = _trace(current, format, lenient=lenient and round == 0, path=path)
            except InvalidLog as exc:
                if round == 0:
                    raise
                # Our own edits made the file unreadable: its lines are not the
                # input's, so the error must not point at one of them.
                raise InvalidLog(
                    f"repair could not finish: its own edits of round {round} made the file unreadable to the {format} reader "
                    f"({exc.message}); nothing was written (a bug of ctxcontract's repair: please report it with this file)",
                    path=path,
                ) from None
            if round == 0:
                lines_in = trace.n_lines
                origin = _Runs.identity(lines_in)
            elif not trace.repairs or round == ROUNDS:
                left = trace.repairs
                break
            physical = _Lines(current, trace.offsets)
            plan = _plan(trace, fmt, physical)
            left = plan.left
            if not plan.changes:
                break
            edited = _temp(temps)
            jobs = _renumberings(trace, fmt, plan)
            watch = {job.line for job in jobs}
            applied = _apply(plan, trace, fmt, physical, edited, watch, {job.covered_to for job in jobs if job.covered_to})
            if hasattr(fmt, "relink"):
                linked = _temp(temps)
                _relink(cast(_Relinking, fmt), current, edited, applied, plan, linked)
                edited = linked
            renumbered = _temp(temps)
            if _renumber(jobs, applied, fmt, plan, edited, renumbered):
                edited = renumbered
            changes.extend(replace(c, line=origin.named(c.line)) for c in plan.changes)
            origin = applied.runs.then(origin)
            current = edited
            for handle in temps:  # earlier rounds' files are done with
                if handle is not current:
                    handle.close()
            temps[:] = [current]
            del trace, physical, plan, applied, jobs  # before the next round's trace
        current.seek(0)
        shutil.copyfileobj(current, sink, _CHUNK)
        described: tuple[str, ...] = ()
        if left:

            def original(c: int) -> int:
                lines = trace.lines(c)
                return origin.named(lines[0]) if lines else 0

            described = tuple(f"{'line ' + str(original(r.line)) if original(r.line) else 'at the end of the file'}: {describe(r, original)}" for r in left)
        ordered = tuple(sorted((c if c.line else replace(c, after=lines_in) for c in changes), key=lambda c: c.line or sys.maxsize))
        return RepairReport(format, ordered, tuple(left), described, lines_in, trace.n_lines)
    finally:
        for handle in temps:
            handle.close()


def _temp(temps: list[IO[bytes]]) -> IO[bytes]:
    """An unnamed temporary file: nothing is left behind, whatever happens."""
    handle = tempfile.TemporaryFile()
    temps.append(handle)
    return handle


def repair_text(text: str, format: str, *, lenient: bool = False, path: str = "<text>") -> Repaired:
    """Repair a session file's text held in memory (:func:`repair_stream` over bytes)."""
    sink = io.BytesIO()
    report = repair_stream(io.BytesIO(text.encode("utf-8", "surrogateescape")), format, sink, lenient=lenient, path=path)
    return Repaired(format, _decode(sink.getvalue()), report.changes, report.remaining, report.remaining_text)
