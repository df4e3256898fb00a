"""Repair a runtime's session file in its own format.

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
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Final
from dataclasses import dataclass, field, replace

from ctxspec.errors import InvalidLog
from ctxspec.events import (
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
from ctxspec.state import EVENT_KINDS, PHASE_TABLE, Phase, Reason

from ..projector import SYNTHETIC, Projector, Repair, RepairKind, _Call
from . import EVENT_FORMATS, Imported, load_text, stream
from .base import GLUE, ImportReport
from .verdict import describe
from .base import EventFormat, Record, count_ids, dumps, rename_ids


@dataclass(frozen=True, slots=True)
class Change:
    """One edit, named by the input line it concerns (0: the end of the file)."""

    line: int
    action: str  # inserted, moved, dropped, renamed, rewrote
    detail: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "end of file"
        return f"{where}: {self.action}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Repaired:
    format: str
    text: str
    changes: tuple[Change, ...]
    #: Hazards the repaired file still has (empty when the repair is complete).
    remaining: tuple[Repair, ...]
    #: The same, described with the input's line numbers.
    remaining_text: tuple[str, ...] = ()


class _Tracing(Projector):
    """The reference projector, keeping every call and noting which results reach a renamed call."""

    def __init__(self) -> None:
        super().__init__()
        self.renamed_results: list[tuple[int, str, str]] = []
        self.calls: dict[int, list[_Call]] = defaultdict(list)  # declaration line -> its calls

    def _declared(self, call: _Call) -> None:
        super()._declared(call)
        self.calls[call.line].append(call)

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
    """Canonical lines of an import mapped to slots of its input."""

    def __init__(self, imp: Imported, n_lines: int) -> None:
        self.imp = imp
        self.n = n_lines

    def lines(self, canonical: int) -> tuple[int, ...]:
        if 1 <= canonical <= len(self.imp.sources):
            return self.imp.sources[canonical - 1].lines
        return ()

    def before(self, canonical: int) -> int:
        lines = self.lines(canonical)
        if canonical > len(self.imp.sources):
            return self.n + 1
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
        sources = self.imp.sources
        for step in (-1, 1):
            i = canonical - 1 + step
            if 0 <= i < len(sources) and lines[0] in sources[i].lines:
                return 0
        return lines[0]


def _call_name(log: Sequence[Event], decl: int, sent: str, orig_of: dict[str, str]) -> str:
    event = log[decl - 1] if 1 <= decl <= len(log) else None
    if isinstance(event, Assistant):
        for c in event.calls:
            if c.id == sent or c.id == orig_of.get(sent):
                return c.name
    return "tool"


def _plan(imp: Imported, fmt: EventFormat, physical: list[str], records: dict[int, Record]) -> _Plan:
    n_lines = len(physical)
    log = imp.log
    repairs, tracer = hazards(log)
    where = _Where(imp, n_lines)
    plan = _Plan(n_lines)
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
        elif r.kind is RepairKind.INPUT_HELD and not isinstance(_event(log, r.line), ToolResult):
            held[r.refs[1]] = min(held.get(r.refs[1], r.line), r.line)
        elif r.kind is RepairKind.RESULTS_REORDERED:
            reordered.add(r.line)
    for decl in sorted(synthetic.keys() | held.keys() | reordered):
        closed = synthetic.get(decl, [])
        if decl in held:  # the block goes before the input that interrupted it
            slot = where.before(held[decl])
            there = f"to just before the user input on line {slot}, which interrupted its exchange"
        elif closed:  # before the event that closed the exchange, or after a cut reply
            slot = where.after(decl) if closed[0].line == decl else where.before(closed[0].line)
            there = f"to where its exchange was closed ({_at(where, closed[0].line)})"
        else:
            slot = max(where.after(c.result_line) for c in tracer.calls[decl] if c.result_line is not None)
            there = "after the exchange's last result"
        _settle(plan, where, log, fmt, records, decl, slot, there, closed, tracer.calls[decl], late, used_late, orig_of)
    for r in repairs:
        if r.kind in (RepairKind.SYNTHETIC_RESULT, RepairKind.LATE_NOTE, RepairKind.INPUT_HELD, RepairKind.RESULTS_REORDERED):
            continue  # above, and late results not claimed there below
        elif r.kind in (RepairKind.ORPHAN_DROPPED, RepairKind.UNDONE_RESULT_DROPPED):
            _drop_event(plan, where, r, f"{r.kind.value}: {r.detail}")
        elif r.kind is RepairKind.ID_RENAMED:
            _rename_call(plan, where, fmt, physical, r, tracer.calls[r.line])
        elif r.kind is RepairKind.EMPTY_REPLY_DROPPED:
            _drop_step(plan, where, log, r)
        elif r.kind is RepairKind.HALF_CALL_DROPPED:
            old = _event(log, r.line)
            src = where.only(r.line)
            if isinstance(old, Assistant) and src and _rewritable(imp, r.line, fmt):
                plan.rewrites[src] = (old, Assistant(text=old.text, calls=old.calls[:-1], complete=True))
                plan.changes.append(Change(src, "rewrote", f"half-streamed call {r.call} removed from the cut reply"))
            else:
                plan.left.append(r)
        elif r.kind is RepairKind.EXCHANGE_KEPT_WHOLE:
            old = _event(log, r.line)
            src = where.only(r.line)
            recountable = _rewritable(imp, r.line, fmt) or hasattr(fmt, "recount_compaction")
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
    for line, orig, sent in tracer.renamed_results:
        for src in where.lines(line):
            if src not in plan.dropped:
                plan.renames[src].append((orig, sent, None))
                plan.changes.append(Change(src, "renamed", f"result of the renamed call: {orig} -> {sent}"))
    return plan


def _settle(
    plan: _Plan,
    where: _Where,
    log: Sequence[Event],
    fmt: EventFormat,
    records: dict[int, Record],
    decl: int,
    slot: int,
    there: str,
    closed: list[Repair],
    calls: list[_Call],
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
        if call.status.value == "dropped":
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
        name = _call_name(log, decl, r.call, orig_of)
        event = ToolResult(call_id=r.call, output=SYNTHETIC[reason], is_error=True)
        lines = where.lines(decl)
        plan.insert(slot, fmt.result_record(event, name, _call_record(records, lines, orig_of.get(r.call, r.call), fmt.id_keys)))
        plan.changes.append(Change(slot if slot <= where.n else 0, "inserted before", f"error result for {r.call} ({name}): {reason.value}"))


def _rename_call(plan: _Plan, where: _Where, fmt: EventFormat, physical: list[str], r: Repair, calls: list[_Call]) -> None:
    """Rename one reused id in the record(s) of its reply: the k-th call with that id."""
    k = [c.orig for c in calls[: next(i for i, c in enumerate(calls) if c.sent == r.to)]].count(r.call)
    for line in where.lines(r.line):
        here = count_ids(json.loads(physical[line - 1]), fmt.id_keys, r.call)
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


def _rewritable(imp: Imported, canonical: int, fmt: EventFormat) -> bool:
    """Whether the record holds the canonical event itself (ours, or an extension record)."""
    return fmt.name == "ctxcontract" or not imp.sources[canonical - 1].native


def _event(log: Sequence[Event], canonical: int) -> Event | None:
    return log[canonical - 1] if 1 <= canonical <= len(log) else None


def _at(where: _Where, canonical: int) -> str:
    if canonical > len(where.imp.sources):
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


def _keeps_step(event: Event | None) -> bool:
    return event is not None and event.type in _STEP_NEUTRAL


def _step_of(log: Sequence[Event], end: int) -> int:
    """The canonical line of the step.begin a step end at ``end`` ends (0: none)."""
    for c in range(end - 1, 0, -1):
        if isinstance(log[c - 1], StepBegin):
            return c
    return 0


def _drop_step(plan: _Plan, where: _Where, log: Sequence[Event], r: Repair) -> None:
    """Drop an empty reply with the step.begin before it and the step end after it.

    Step and turn boundaries that share a record with them are glue the
    importer infers again; a record with anything else on it is left alone.
    When such glue ended the previous step, the dropped step's own end stays
    to end that one.
    """
    before = r.line - 1
    while _keeps_step(_event(log, before)):
        before -= 1
    group = [before, r.line] if isinstance(_event(log, before), StepBegin) else [r.line]

    def around(group: list[int]) -> tuple[set[int], list[tuple[int, Event]]]:
        """The input lines of ``group``, and the other events on those lines."""
        lines = {line for c in group for line in where.lines(c)}
        return lines, [(c, s.event) for c, s in enumerate(where.imp.sources, start=1) if set(s.lines) & lines and c not in group]

    lines, rest = around(group)
    if not lines or not all(isinstance(e, GLUE) for _c, e in rest):
        plan.left.append(r)
        return
    after = r.line + 1
    while _keeps_step(_event(log, after)):
        after += 1
    plan.dropped_steps.add(group[0])
    ends_live_step = any(isinstance(e, StepEnd) and _step_of(log, c) not in plan.dropped_steps for c, e in rest)
    if isinstance(_event(log, after), (StepEnd, StepError)) and not ends_live_step:
        wider, wider_rest = around([*group, after])
        if all(isinstance(e, GLUE) for _c, e in wider_rest):
            lines = wider
    for line in sorted(lines):
        plan.drop(line, "empty reply dropped (nothing in it could be sent)")


# ---------------------------------------------------------------------------
# Applying the plan.
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


@dataclass(slots=True)
class _Output:
    lines: list[str] = field(default_factory=list)
    #: For each output line, the input line it is (0: inserted).
    source: list[int] = field(default_factory=list)
    #: For each input line k, the output's length once k (and the results
    #: placed right after it) was passed.
    passed: dict[int, int] = field(default_factory=dict)
    #: Where input line k went, as an output index.
    placed: dict[int, int] = field(default_factory=dict)

    def put(self, text: str, src: int) -> None:
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"
        self.lines.append(text)
        self.source.append(src)


def _apply(plan: _Plan, physical: list[str], fmt: EventFormat) -> _Output:
    out = _Output()
    for k in range(1, plan.n_lines + 2):
        items: list[tuple[int, int, str, int]] = [(prio, seq, text, 0) for prio, seq, text in plan.inserts.get(k, ())]
        items += [(prio, seq, _line_text(physical[src - 1], src, plan, fmt), src) for prio, seq, src in plan.moves.get(k, ())]
        for _prio, _seq, text, src in sorted(items):
            out.put(text if text.endswith("\n") else text + "\n", src)
            if src:
                out.placed[src] = len(out.lines) - 1
        if k > 1:  # results placed right after line k-1 belong with what precedes them
            out.passed[k - 1] = len(out.lines)
        if k <= plan.n_lines and k not in plan.dropped and k not in plan.moved:
            out.put(_line_text(physical[k - 1], k, plan, fmt), k)
            out.placed[k] = len(out.lines) - 1
        out.passed[k] = len(out.lines)
    return out


def _line_text(raw: str, k: int, plan: _Plan, fmt: EventFormat) -> str:
    if k not in plan.renames and k not in plan.rewrites:
        return raw
    ending = raw[len(raw.rstrip("\r\n")) :]
    body = raw[: len(raw) - len(ending)]
    if k in plan.rewrites:
        body = _rewrite_ext(body, *plan.rewrites[k])
    if k in plan.renames:
        obj: object = json.loads(body)
        for old, new, nth in sorted(plan.renames[k], key=lambda r: -1 if r[2] is None else -r[2]):  # later ones first
            obj = rename_ids(obj, fmt.id_keys, old, new, nth)
        body = dumps(obj)
    return body + (ending or "\n")


#: Rounds of repair at most: a round's edits can expose what only the next can fix
#: (a native compaction that now cuts an exchange the first round completed).
ROUNDS: Final = 3


def repair_text(text: str, format: str, *, lenient: bool = False, path: str = "<text>") -> Repaired:
    """Repair a session file's text; the input is never modified."""
    fmt = EVENT_FORMATS.get(format)
    if fmt is None:
        raise InvalidLog(f"no repair for format {format!r}", path=path)
    current = text
    origin: list[int] = []  # for each line of ``current``, the input line (0: inserted)
    changes: list[Change] = []
    left: list[Repair] = []
    for round in range(ROUNDS):
        imp = load_text(current, format=format, lenient=lenient and round == 0, path=path)
        physical = _split_lines(current)
        if round == 0:
            origin = list(range(1, len(physical) + 1))
        plan = _plan(imp, fmt, physical, _records_by_line(physical, imp))
        for bad in imp.report.unreadable:
            plan.drop(bad.line, f"unreadable: {bad.why}")
        for note in imp.report.notes:
            if "truncated" in note.why:
                plan.drop(note.line, f"truncated last line removed: {physical[note.line - 1][:120]!r}")
        left = plan.left
        if not plan.changes:
            break
        out = _apply(plan, physical, fmt)
        relink = getattr(fmt, "relink", None)
        if relink is not None:  # a tree format: put moved and inserted lines on the chain the runtime follows
            linked: list[str] = relink(current, out.lines)
            for i, (raw, new) in enumerate(zip(out.lines, linked)):
                if raw != new and out.source[i]:
                    plan.changes.append(Change(out.source[i], "relinked", "parent set to the conversation entry before it in the file"))
            out.lines = linked
        _renumber(imp, out, fmt, plan)
        changes.extend(replace(c, line=_input_line(c.line, origin)) for c in plan.changes)
        origin = [origin[src - 1] if src else 0 for src in out.source]
        current = "".join(out.lines)
        left, _ = hazards(load_text(current, format=format, path=path).log)
        if not left:
            break
    described: tuple[str, ...] = ()
    if left:
        final = load_text(current, format=format, lenient=lenient and not changes, path=path)

        def original(c: int) -> int:
            return _input_line(final.origin(c), origin) if final.origin(c) else 0

        described = tuple(f"line {original(r.line) or 'end of file'}: {describe(r, original)}" for r in left)
    ordered = tuple(sorted(changes, key=lambda c: c.line or len(text) + 1))
    return Repaired(format, current, ordered, tuple(left), described)


def _input_line(line: int, origin: list[int]) -> int:
    """The input line of line ``line`` of a round's text (the next one that has one, for an inserted line)."""
    for k in range(max(line, 1), len(origin) + 1):
        if origin[k - 1]:
            return origin[k - 1]
    return 0


def _renumber(imp: Imported, output: _Output, fmt: EventFormat, plan: _Plan) -> None:
    """Point every compaction at the same place in the edited file.

    A compaction covers the context up to a place; edits move places.  Each
    compaction is made to cover, in the output, exactly what it covered in the
    input (up to where a repair cut it back, :attr:`_Plan.cut_to`), results
    placed right after that included.  Canonical and extension records carry
    a line number we rewrite; a format's native record is rewritten by the
    format's ``recount_compaction`` hook when it has one.
    """
    out, passed, placed = output.lines, output.passed, output.placed
    recount = getattr(fmt, "recount_compaction", None)
    after: Imported | None = None
    for source in imp.sources:
        event = source.event
        if not isinstance(event, Compaction) or len(source.lines) != 1:
            continue
        native = source.native and fmt.name != "ctxcontract"
        here = placed.get(source.line)
        if here is None or (native and recount is None):
            continue
        new_line = _covered_until(imp, passed, plan.cut_to.get(source.line, event.upto))
        if fmt.name == "ctxcontract":
            upto = new_line
        else:
            if after is None:  # stale compaction records may not import yet: leniently
                after = _lenient_import("".join(out), fmt.name)
            upto = max((i for i, s in enumerate(after.sources, start=1) if s.lines and max(s.lines) <= new_line), default=1)
        raw = out[here]
        ending = raw[len(raw.rstrip("\r\n")) :]
        body = raw[: len(raw) - len(ending)]
        if native:
            assert after is not None and recount is not None
            at = next((i for i, s in enumerate(after.sources, start=1) if here + 1 in s.lines), 0)
            new_body = recount(body, after.log[: at - 1], upto) if at else None
            if new_body is None:
                continue
            body = new_body
        else:
            body = _rewrite_ext(body, event, Compaction(summary=event.summary, upto=upto))
        if body + ending != raw:
            out[here] = body + ending
            if source.line not in plan.cut_to:  # a cut compaction is already named
                plan.changes.append(Change(source.line, "renumbered", "compaction points at the same place in the edited file"))


def _lenient_import(text: str, format: str) -> Imported:
    """What imports of an edited file whose compaction records may still be stale.

    Only the events before those records matter here, so a file where nothing
    else is readable is an empty import, not an error.
    """
    report = ImportReport(path="<repair>")
    _name, events = stream(io.BytesIO(text.encode("utf-8", "surrogateescape")), report, format=format, lenient=True)
    sources = tuple(events)
    return Imported(format, tuple(s.event for s in sources), sources, report)


def _covered_until(imp: Imported, passed: dict[int, int], upto: int) -> int:
    """The output's line up to which canonical lines ``1..upto`` of the input reach.

    That is where the first uncovered event's first record went (a record can
    hold several events: one left uncovered keeps the whole record out).
    """
    nxt = imp.sources[upto].lines if upto < len(imp.sources) else ()
    if nxt:
        return passed.get(min(nxt) - 1, 0)
    covered = imp.sources[upto - 1].lines
    return passed[max(covered)] if covered else 0


def _split_lines(text: str) -> list[str]:
    """Physical lines, each with its ``\n`` (lines end at ``\n`` only, as the readers count them)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _call_record(records: dict[int, Record], lines: tuple[int, ...], call_id: str, keys: frozenset[str]) -> Record | None:
    """The record of a reply that declares ``call_id`` (else the reply's last record)."""
    for line in lines:
        rec = records.get(line)
        if rec is not None and count_ids(rec.obj, keys, call_id):
            return rec
    return records.get(lines[-1]) if lines else None


def _records_by_line(physical: list[str], imp: Imported) -> dict[int, Record]:
    """The parsed records of the lines events come from (for result records to copy ids from)."""
    wanted = {line for s in imp.sources if isinstance(s.event, Assistant) for line in s.lines}
    out: dict[int, Record] = {}
    for line in wanted:
        try:
            obj = json.loads(physical[line - 1])
        except (ValueError, IndexError):
            continue
        if isinstance(obj, dict):
            out[line] = Record(line, obj)
    return out
