"""``ctxcontract show``: a picture of a session, its projection and what broke.

What this package owns: reading what ``check`` reads and drawing it as one
self-contained file, an HTML page (``page.py``) or an SVG picture
(``svg.py``), from a :class:`~ctxref.show.model.Picture` (``model.py``).
The commands ``check``, ``verify`` and ``counterexample`` call the builders
here for ``--picture``.  No network, no dependency: the standard library
writes every byte.

The builders, one per thing a picture can be of:

* :func:`of_session`: a session file in an event format, the reference
  projection at a point, and the places where a projection of the log as it
  stands breaks a rule (``check``'s hazards);
* :func:`of_request`: the same log beside a request the runtime sent
  (``check --request``);
* :func:`of_projector`: a projector's output beside the reference's, at the
  request that fails (``check --projector``, ``verify``, ``counterexample``);
* :func:`of_messages`: a message-list file (Kimi CLI ``context.jsonl``, a
  captured request) as the runtime sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from ctxspec.captured import Judgement
from ctxspec.contract import Violation
from ctxspec.events import Event, Resume, StepBegin
from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, to_openai
from ctxspec.policy import Policy

from ..formats import Imported
from ..formats.messages import LoadedMessages
from ..formats.verdict import REPAIR_RULES, Hazard, describe
from ..projector import Projector, RepairKind
from .model import Bar, Builder, CallFate, Column, Found, Ghost, Kind, Picture, Row, bars_of, column, missing_from, place_lanes, rows_by_line, rows_of, spans_of

__all__ = ["Picture", "of_messages", "of_projector", "of_request", "of_session", "render", "kind_of"]

ProjectorFn = Callable[[Sequence[Event]], Sequence[Message]]

#: What each level costs, in the legend and the findings list.
LEVEL_WORDS: Final = {
    "reject": "reject: the provider answers 400",
    "loss": "lost context: the model misses what the log holds, or sees what it does not",
    "cache": "cache: sendable, but the prompt cache misses",
    "policy": "policy: a different choice than the declared policy's",
}


def kind_of(path: str) -> str:
    """``svg`` for a path ending in ``.svg``, else ``html``."""
    return "svg" if path.lower().endswith(".svg") else "html"


def render(picture: Picture, kind: str = "html") -> str:
    """The picture as one self-contained HTML page or SVG document."""
    if kind == "svg":
        from .svg import render_svg

        return render_svg(picture)
    from .page import render_html

    return render_html(picture)


def _lines(imp: Imported) -> list[int]:
    return [s.line for s in imp.sources]


def _timeline(imp: Imported, policy: Policy | None) -> tuple[list[Row], list[Bar]]:
    return rows_of(imp.log, _lines(imp)), bars_of(imp.log, policy)


def _point(imp: Imported, at: int | None) -> int:
    """How many events come before the projection point ``--at LINE`` (a line of the file)."""
    if at is None:
        return len(imp.log)
    n = 0
    for i, s in enumerate(imp.sources, 1):
        if s.line and s.line <= at or not s.line and i == 1:
            n = i
        elif s.line and s.line > at:
            break
    return max(n, 1)


def _point_label(imp: Imported, n: int, at: int | None) -> str:
    if at is None and n == len(imp.log):
        return "at the end of the file (what a request built after the last line sends)"
    line = imp.sources[n - 1].line if 1 <= n <= len(imp.sources) else 0
    return f"after line {line}" + (f" (--at {at})" if at is not None else "")


def _first_broken_request(imp: Imported, found: Sequence[Hazard]) -> int:
    """The events up to the first request after the earliest hazard (the end when none follows)."""
    first = min((h.repair.line for h in found), default=len(imp.log))
    return next((i for i in range(first, len(imp.log) + 1) if isinstance(imp.log[i - 1], StepBegin)), len(imp.log))


def hazards(imp: Imported, policy: Policy | None) -> list[Hazard]:
    """The places where a projection of the log as it stands breaks a rule, as ``check`` finds them."""
    p = Projector(track_fates=False, policy=policy)
    for event in imp.log:
        p.feed(event)
    p.feed(Resume())  # as the runtime will resume it

    def call_line(line: int, index: int) -> int:
        return imp.sources[line - 1].call_line(index) if 1 <= line <= len(imp.sources) else 0

    out: list[Hazard] = []
    for r in p.repairs:
        at = call_line(r.line, r.index) if r.kind in (RepairKind.ID_RENAMED, RepairKind.HALF_CALL_DROPPED) and r.index >= 0 else imp.origin(r.line)
        rule, level = REPAIR_RULES[r.kind]
        out.append(Hazard(rule, level, r, at, describe(r, imp.origin, call_line)))
    return out


#: What a projection of the log as it stands does wrong, per repair, for the ghost row.
_LEFT_OUT: Final = {
    RepairKind.ORPHAN_DROPPED: "left out: the result at line {line}, which answers no call that was sent",
    RepairKind.UNDONE_RESULT_DROPPED: "left out: the result at line {line}, whose call was undone or cleared",
    RepairKind.LATE_DROPPED: "left out: the late result at line {line} for {call} (the policy drops late results)",
    RepairKind.HALF_CALL_DROPPED: "left out: call {call}, cut mid-arguments at line {line}",
    RepairKind.EMPTY_REPLY_DROPPED: "left out: the empty reply at line {line}",
    RepairKind.CALL_DROPPED: "left out: call {call}, which has no result (the policy drops it)",
}


def _hazard_found(h: Hazard, rows: Sequence[Row], bars: Sequence[Bar], imp: Imported) -> Found:
    r = h.repair
    n = len(rows)
    where = [x for x in (r.line, *r.refs) if 1 <= x <= n]
    calls = [r.call, r.to] if r.call else []
    ghosts: list[Ghost] = []
    notes: list[tuple[int, str]] = []
    if r.kind in _LEFT_OUT:
        ghosts.append(Ghost(0, _LEFT_OUT[r.kind].format(line=h.line or "the end", call=r.call), after_row=min(r.line, n)))
    elif r.kind is RepairKind.INPUT_HELD and len(r.refs) == 2:
        exchange = r.refs[1]
        waiting = [b for b in bars if b.start == exchange and (b.end is None or b.end > r.line)]
        calls.extend(b.id for b in waiting)
        ids = ", ".join(b.id for b in waiting) or "its calls"
        held = imp.origin(r.line)
        ghosts.append(
            Ghost(0, f"missing in log order: the tool message for {ids}. A projection in log order sends line {held}'s user message here, and the call has no answer: 400", after_row=exchange)
        )
        notes.append((r.line, f"arrives while {ids} waits for its result: in log order its tool message is missing here"))
    elif r.kind is RepairKind.SYNTHETIC_RESULT:
        notes.append((min(r.line, n), f"{r.call} is closed with no result: its tool message is missing unless one is made"))
    elif r.kind is RepairKind.LATE_NOTE:
        notes.append((r.line, f"a result for {r.call} after its call was closed: in log order, a second answer"))
    why = h.what[0].upper() + h.what[1:]
    if r.kind is RepairKind.SYNTHETIC_RESULT:
        why += "; the reference sends the tool message marked synthetic"
    return Found(h.rule, h.level.value, why + ".", rows=tuple(where), calls=tuple(c for c in calls if c), ghosts=tuple(ghosts), notes=tuple(notes))


def of_session(imp: Imported, *, policy: Policy | None = None, at: int | None = None, title: str = "", keep: Callable[[str, str, str], bool] | None = None) -> Picture:
    """A session file: its timeline, the reference projection at a point, and ``check``'s findings.

    ``keep(rule, level, why)`` selects the findings (``check --rules``, ``--fail-on``).
    """
    rows, bars = _timeline(imp, policy)
    kept = [h for h in hazards(imp, policy) if keep is None or keep(h.rule, h.level.value, h.what)]
    n = _point(imp, at) if at is not None or not kept else _first_broken_request(imp, kept)
    reference = Projector(policy=policy)
    for event in imp.log[:n]:
        reference.feed(event)
    col = column(f"reference projection ({reference.policy.name})", reference.sourced_messages())
    found = [_hazard_found(h, rows, bars, imp) for h in kept]
    label = _point_label(imp, n, at)
    if at is None and kept and n < len(imp.log):
        label = f"at the first request a projection in log order breaks (line {imp.sources[n - 1].line}); --at LINE shows another"
    b = Builder(title or imp.report.path, f"{imp.format}, {len(imp.log)} events", rows, bars, spans_of(imp.log), [col], found, n, label)
    b.notes.extend(str(x) for x in [*imp.report.notes, *imp.report.unreadable])
    if found:
        b.notes.append("the findings are the places where a projection of the log as it stands breaks a rule; the reference projection repairs each")
    return b.build()


def of_request(imp: Imported, captured: LoadedMessages, judged: Judgement, *, policy: Policy | None = None, title: str = "", request_name: str = "") -> Picture:
    """``check LOG --request CAPTURED``: the request the runtime sent beside the reference projection there."""
    rows, bars = _timeline(imp, policy)
    reference = Projector(policy=policy)
    for event in imp.log[: judged.point]:
        reference.feed(event)
    sent = _match_rows([(m, None) for m in captured.messages], reference.sourced_messages())
    columns = [column(f"captured request {request_name}".strip(), sent), column(f"reference projection ({reference.policy.name})", reference.sourced_messages())]
    by_line = rows_by_line(rows)
    found: list[Found] = []
    for f in judged.findings:
        ghosts = [g for pos, g in missing_from(columns, 0, 1) if f.call is not None and columns[1].messages[pos].call_id == f.call]
        msgs = ((0, f.index),) if f.index is not None and not ghosts else ()
        notes = _missing_notes(bars, [f.call] if ghosts and f.call else [], "the captured request")
        found.append(Found(f.rule, f.level.value, f.what, rows=tuple(by_line.get(f.line or 0, [])), calls=(f.call,) if f.call else (), messages=msgs, ghosts=tuple(ghosts), match_rows=False, notes=notes))
    n = judged.point
    b = Builder(title or imp.report.path, f"{imp.format}, {len(imp.log)} events; request {request_name} ({captured.format}, {len(captured.messages)} messages)", rows, bars, spans_of(imp.log), columns, found, n, _point_label(imp, n, None if n == len(imp.log) else imp.sources[n - 1].line))
    b.notes.extend(judged.notes)
    return b.build()


def _match_rows(messages: Sequence[tuple[Message, int | None]], reference: Sequence[tuple[Message, int]]) -> list[tuple[Message, int | None]]:
    """Messages with no origin of their own get the row of an equal message of the reference."""
    rows: dict[str, list[int]] = {}
    for m, origin in reference:
        rows.setdefault(_key(m), []).append(origin)
    out: list[tuple[Message, int | None]] = []
    for m, row in messages:
        if row is None and rows.get(_key(m)):
            row = rows[_key(m)].pop(0)
        out.append((m, row))
    return out


def _key(m: Message) -> str:
    import json

    d = to_openai(m)
    d.pop("x_is_error", None)
    d.pop("x_synthetic", None)
    return json.dumps(d, sort_keys=True)


def of_projector(
    log: Sequence[Event],
    lines: Sequence[int],
    projector: ProjectorFn,
    violations: Sequence[Violation],
    *,
    label: str,
    policy: Policy | None = None,
    title: str = "",
    subtitle: str = "",
) -> Picture:
    """A projector's output beside the reference projection, at the request of the first finding.

    ``lines[i]`` is the file's line of ``log[i]`` (a generated session's own
    line numbers for ``verify``).  A violation's ``line`` is a log line (1-based).
    """
    rows = rows_of(log, lines)
    bars = bars_of(log, policy)
    n = _failing_request(log, violations)
    reference = Projector(policy=policy)
    for event in log[:n]:
        reference.feed(event)
    ref = reference.sourced_messages()
    raised: list[str] = []
    try:
        got: list[tuple[Message, int | None]] = _match_rows([(m, None) for m in projector(tuple(log[:n]))], ref)
    except Exception as exc:  # the projector under test is not ours to trust (C12)
        got = []
        raised.append(f"the projector raised {type(exc).__name__}: {exc}")
    columns = [column(f"projector under test: {label}", got, raised[0] if raised else ""), column(f"reference projection ({reference.policy.name})", ref)]
    found: list[Found] = []
    for v in violations:
        calls = (v.call,) if v.call else ()
        ghosts = [g for pos, g in missing_from(columns, 0, 1) if v.call is not None and _same(columns[1].messages[pos].call_id, v.call)]
        msgs = ((0, v.index),) if v.index is not None and v.index < len(columns[0].messages) and not ghosts else ()
        if v.index is not None and v.index >= len(columns[0].messages) and not ghosts:
            ghosts.append(Ghost(0, f"missing: the projector sent {len(columns[0].messages)} message(s); the finding is about message {v.index}", position=len(columns[0].messages)))
        notes = _missing_notes(bars, [v.call] if v.call and any(g.text.startswith("missing: the tool") for g in ghosts) else [], "the projector's request")
        found.append(Found(v.rule, v.level.value, v.message, rows=(v.line,) if v.line and v.line <= len(log) else (), calls=calls, messages=msgs, ghosts=tuple(ghosts), match_rows=False, notes=notes))
    point = "after the last event" if n == len(log) else f"at the request of line {lines[n - 1] if n - 1 < len(lines) else n}"
    b = Builder(title, subtitle or f"{len(log)} events", rows, bars, spans_of(log), columns, found, n, point)
    b.notes.extend(raised)
    return b.build()


def _failing_request(log: Sequence[Event], violations: Sequence[Violation]) -> int:
    """The events up to the request the findings are about: the first ``step.begin`` at or after their lines (else the whole log)."""
    lines = [v.line for v in violations if v.line is not None and 1 <= v.line <= len(log)]
    if not lines:
        return len(log)
    return next((i for i in range(max(lines), len(log) + 1) if isinstance(log[i - 1], StepBegin)), len(log))


def _missing_notes(bars: Sequence[Bar], calls: Sequence[str], where: str) -> tuple[tuple[int, str], ...]:
    """A word on the row of each call's result: it is there in the log, and missing from ``where``."""
    out: list[tuple[int, str]] = []
    for b in bars:
        if b.end is not None and b.fate is CallFate.ANSWERED and any(_same(b.id, c) for c in calls):
            out.append((b.end, f"the result for {b.id} is here in the log, and missing from {where}"))
    return tuple(out)


def _same(a: str, b: str) -> bool:
    return a == b or a.split("#", 1)[0] == b.split("#", 1)[0]


def of_messages(loaded: LoadedMessages, violations: Sequence[Violation], *, title: str = "") -> Picture:
    """A message-list file as the runtime sends it: each message a row, each call a bar to its tool message."""
    msgs = loaded.messages
    rows: list[Row] = []
    raw: list[Bar] = []
    for i, m in enumerate(msgs, 1):
        line = loaded.lines[i - 1] if i - 1 < len(loaded.lines) else 0
        if isinstance(m, SystemMessage):
            rows.append(Row(i, line, Kind.META, m.text[:240] or "(empty)"))
        elif isinstance(m, AssistantMessage):
            keys = tuple(f"c{i}.{k}" for k in range(len(m.calls)))
            rows.append(Row(i, line, Kind.REPLY, m.text[:240] or ("(calls only)" if m.calls else "(empty)"), calls=keys))
            for k, c in enumerate(m.calls):
                answer = next((j for j in range(i + 1, len(msgs) + 1) if isinstance(msgs[j - 1], ToolMessage) and msgs[j - 1].call_id == c.id), None)  # type: ignore[union-attr]
                block_end = i
                while block_end < len(msgs) and isinstance(msgs[block_end], ToolMessage):
                    block_end += 1  # the rows i+1 .. block_end are the tool messages right after the call
                if answer is None:
                    raw.append(Bar(keys[k], c.id, c.name, i, None, CallFate.UNANSWERED))
                elif answer > block_end:  # a provider sees the call unanswered: its answer comes after other messages
                    raw.append(Bar(keys[k], c.id, c.name, i, answer, CallFate.UNANSWERED, f"answered out of place, at message {answer - 1}"))
                else:
                    raw.append(Bar(keys[k], c.id, c.name, i, answer, CallFate.ANSWERED))
        elif isinstance(m, ToolMessage):
            rows.append(Row(i, line, Kind.RESULT, m.content[:240] + (" (error)" if m.is_error else ""), about=m.call_id))
        else:
            rows.append(Row(i, line, Kind.PROMPT, m.text[:240] or "(empty)"))
    bars = place_lanes(raw)
    col = column(f"the messages as {loaded.format} sends them", [(m, i) for i, m in enumerate(msgs, 1)])
    by_line = rows_by_line(rows)
    found: list[Found] = []
    for v in violations:
        where = (v.index + 1,) if v.index is not None else tuple(by_line.get(v.line or 0, [])) or tuple(r.index for r in rows if v.line is not None and r.line <= v.line)[-1:]
        ghosts: list[Ghost] = []
        notes: list[tuple[int, str]] = []
        named = [b.id for b in bars if b.id == v.call or repr(b.id) in v.message]  # the readers name a call by its quoted id
        for b in bars:
            if b.fate is CallFate.UNANSWERED and b.id in named:
                after = b.start
                while after < len(msgs) and isinstance(msgs[after], ToolMessage):
                    after += 1
                late = f"; it comes later, {b.reason}" if b.reason else "; nothing answers the call"
                ghosts.append(Ghost(0, f"missing: the tool message for {b.id}{late}", position=after))
                notes.append((b.start, f"no tool message for {b.id} right after it: a provider sees it unanswered"))
        found.append(Found(v.rule, v.level.value, v.message, rows=where, calls=tuple(dict.fromkeys(named)), messages=((0, v.index),) if v.index is not None else (), ghosts=tuple(ghosts), notes=tuple(notes)))
    builder = Builder(title or loaded.report.path, f"{loaded.format}, {len(msgs)} messages as the runtime sends them", rows, bars, [], [col], found, None, "the whole list, as it is sent")
    builder.notes.extend(str(x) for x in [*loaded.report.notes, *loaded.report.unreadable])
    return builder.build()
