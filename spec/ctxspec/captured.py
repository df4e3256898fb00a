"""A captured request judged as a projection of its log, not diffed against one.

What this module owns: given a session log and a request a runtime really
sent, which request of the log it is (the projection point), and what in it
breaks the contract there, one finding per fact, each naming the request's
message and the log line that holds the thing.  What it must not know: any
file format (the caller maps log lines to the file's lines with ``origin``)
or any projector: the request is judged against the ledger, by
:func:`ctxspec.contract.check_projection`, not against another projection.

What is not a defect is tolerated, and said in :attr:`Judgement.notes`:

* the system prompt: a runtime assembles it from more than the log records
  (tools, environment), so it is compared with nothing;
* argument serialisation: arguments are compared as JSON values;
* the runtime's own wording of summaries and late notes (matched by
  containing the logged text, as the contract always does);
* differences of policy (placeholder wording, merged user messages,
  unanswered calls left out instead of closed, block order): findings of
  level ``policy``.  Under a declared policy they count like any finding;
  with no declared policy the runtime's choices are unknown, so they are
  notes.

A runtime's one broken fact often breaks several rules: a tool message
missing from the request leaves its call unanswered (C1) and its logged
result unsent (C4).  Violations about the same call are one finding, at the
level of the worst.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from .contract import Violation, check_projection
from .events import Assistant, Event, SessionMeta, StepBegin
from .ledger import Ledger
from .messages import AssistantMessage, Message, SystemMessage, ToolMessage
from .policy import Arguments, Policy
from .rules import Level

#: How many candidate projection points are judged before the rest are skipped, latest first.
MAX_POINTS: Final = 64


@dataclass(frozen=True, slots=True)
class RequestFinding:
    """One fact about the captured request, with the rules it breaks."""

    rule: str  # the rule of the worst violation
    level: Level
    what: str  # one sentence, with the file's line numbers
    index: int | None  # message index in the captured request (always a valid one), or None
    line: int | None  # the log line that holds the thing (the caller's ``origin`` applied), or None
    rules: tuple[str, ...]  # every rule the fact breaks, worst first
    call: str | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    """The captured request at its projection point."""

    #: Events of the log before the request: the request was built after ``log[:point]``.
    point: int
    #: The point's ``step.begin`` line in the log (None: the end of the log, no step begun yet).
    step_line: int | None
    findings: tuple[RequestFinding, ...]
    #: Differences that are not defects (system prompt, policy choices under no declared policy).
    notes: tuple[str, ...]


def _points(log: Sequence[Event], request: Sequence[Message]) -> tuple[list[int], list[int]]:
    """The projection points the request can be, likely ones first: ``(likely, others)``.

    A request is built after each ``step.begin``, or is the next one, after the
    last line.  When the log holds the request's last assistant message (a reply
    with the same first call id, or with the same text if it has no calls), the
    request was most likely built after that reply and before the next reply
    with something in it.
    """
    points = [i + 1 for i, e in enumerate(log) if isinstance(e, StepBegin)]
    if not points or points[-1] != len(log):
        points.append(len(log))
    last = next((m for m in reversed(request) if isinstance(m, AssistantMessage)), None)
    likely: set[int] = set()
    if last is not None and (last.calls or last.text):
        replies = [(i, e) for i, e in enumerate(log) if isinstance(e, Assistant) and (e.text or e.calls)]
        for n, (at, reply) in enumerate(replies):
            if any(c.id == last.calls[0].id for c in reply.calls) if last.calls else reply.text == last.text:
                nxt = replies[n + 1][0] if n + 1 < len(replies) else len(log)
                likely.update(p for p in points if at < p <= nxt)
    first_try = sorted(likely)[-MAX_POINTS:] if likely else points[-MAX_POINTS:]
    return first_try, [p for p in points[-MAX_POINTS:] if p not in first_try]


def _facts(found: Iterable[Violation]) -> list[list[Violation]]:
    """The violations grouped by fact, in order: those about one call are one fact, each other is its own."""
    groups: dict[str | int, list[Violation]] = {}
    for k, v in enumerate(found):
        groups.setdefault(v.call if v.call is not None else k, []).append(v)
    return list(groups.values())


def _severity(found: Iterable[Violation]) -> tuple[int, ...]:
    """How many facts the violations are, counted at their worst level, most severe level first."""
    counts = [0] * len(Level)
    for fact in _facts(found):
        counts[len(Level) - 1 - max(v.level.severity for v in fact)] += 1
    return tuple(counts)


def judge_request(
    log: Sequence[Event],
    request: Sequence[Message],
    policy: Policy,
    *,
    declared: bool,
    origin: Callable[[int], int] = lambda line: line,
    call_origin: Callable[[int, str], int] | None = None,
) -> Judgement:
    """Judge ``request`` as the projection the runtime built at some request of ``log``.

    ``declared`` says whether ``policy`` is the runtime's declared policy (then
    policy-level differences are findings) or only the reference yardstick.
    ``origin`` maps a log line (1-based event index) to the file's line;
    ``call_origin(line, call id)``, where a format writes each call as a record
    of its own, to the line of the call's record (else the reply's line is used).
    """
    pol = replace(policy, arguments=Arguments.JSON)
    notes: list[str] = []
    # The system prompt is the runtime's to assemble: compared with nothing.
    body = list(request)
    offset = 0
    if body and isinstance(body[0], SystemMessage):
        body, offset = body[1:], 1
    meta_system = log[0].system if log and isinstance(log[0], SessionMeta) else ""
    if meta_system and offset:
        if request[0].text != meta_system:  # type: ignore[union-attr]
            notes.append("the request's system prompt differs from the one the log records; it is not judged")
    elif meta_system:
        notes.append("the request has no system prompt; the log records one; it is not judged")
    elif offset:
        notes.append("the request has a system prompt the log does not record; it is not judged")
    checked: list[Message] = ([SystemMessage(text=meta_system)] if meta_system else []) + body
    shift = (1 if meta_system else 0) - offset  # checked index - request index

    def counts(v: Violation) -> bool:  # a policy difference is a finding only under a declared policy
        return declared or v.level is not Level.POLICY

    def score(found: list[Violation]) -> tuple[int, ...]:
        return _severity(v for v in found if counts(v))

    likely, others = _points(log, body)
    results = _judged_at(log, checked, pol, likely)
    if all(any(score(found)) for found in results.values()):  # no likely point fits: try the others
        results.update(_judged_at(log, checked, pol, others))
    # The point where the request is the fewest facts wrong, a likely one of equals, then the latest.
    point = min(results, key=lambda n: (score(results[n]), n not in likely, -n))
    found = results[point]
    led = Ledger(policy=pol)
    for event in log[:point]:
        led.feed(event)

    def index(i: int | None) -> int | None:
        if i is None or not request:
            return None
        j = i - shift
        return min(max(j, 0), len(request) - 1)

    notes += [f"a different policy, not a defect: {v.message}" for v in found if not counts(v)]
    declared_at = call_origin if call_origin is not None else (lambda line, _call: origin(line))
    findings = _group([v for v in found if counts(v)], led, checked, index, origin, declared_at)
    step_line = origin(point) if point and isinstance(log[point - 1], StepBegin) else None
    return Judgement(point, step_line, tuple(findings), tuple(notes))


def _judged_at(log: Sequence[Event], checked: Sequence[Message], pol: Policy, points: Iterable[int]) -> dict[int, list[Violation]]:
    """The contract's findings on ``checked`` as the request built after ``log[:n]``, for each ``n`` in ``points``."""
    wanted = set(points)
    ledger = Ledger(policy=pol)
    out: dict[int, list[Violation]] = {}
    if 0 in wanted:
        out[0] = check_projection((), checked, ledger=ledger, policy=pol)
    for n, event in enumerate(log[: max(wanted, default=0)], 1):
        ledger.feed(event)
        if n in wanted:
            out[n] = check_projection(log[:n], checked, ledger=ledger, policy=pol)
    return out


def _group(
    found: Sequence[Violation],
    led: Ledger,
    checked: Sequence[Message],
    index: Callable[[int | None], int | None],
    origin: Callable[[int], int],
    declared_at: Callable[[int, str], int],
) -> list[RequestFinding]:
    """One finding per fact (:func:`_facts`), at the level of its worst violation."""
    out: list[RequestFinding] = []
    for fact in _facts(found):
        group = sorted(fact, key=lambda v: -v.level.severity)
        worst, key = group[0], group[0].call
        rules = tuple(dict.fromkeys(v.rule for v in group))
        line = next((v.line for v in group if v.line is not None), None)
        what = "; ".join(dict.fromkeys(v.message for v in group))
        about = _about_call(key, group, led, checked, origin, declared_at) if key is not None else None
        what, line = about if about is not None else (_in_file(what, line, origin), line)
        at = next((v.index for v in group if v.index is not None), None)
        out.append(RequestFinding(worst.rule, worst.level, what, index(at), None if line is None else origin(line), rules, key))
    return out


def _in_file(what: str, line: int | None, origin: Callable[[int], int]) -> str:
    return what if line is None else f"{what} (log line {origin(line)})"


def _about_call(
    call_id: str, group: Sequence[Violation], led: Ledger, checked: Sequence[Message], origin: Callable[[int], int], declared_at: Callable[[int, str], int]
) -> tuple[str, int | None] | None:
    """The sentence for a call whose tool message the request lacks, in the file's lines.

    The call is found by the line the contract named: its result's line (C4)
    or the line that closed it (C5), so that a reused id names the right one.
    """
    if any(isinstance(m, ToolMessage) and m.call_id == call_id for m in checked):
        return None
    for v in group:
        if v.rule == "C4" and v.line is not None:
            call = next((c for c in led.all_calls if c.result_line == v.line), None)
            if call is not None:
                return f"the request lacks the tool message for {call_id} ({call.name}); its result is on line {origin(v.line)}", v.line
        if v.rule == "C5" and v.level is Level.REJECT and v.line is not None:
            call = next((c for c in led.all_calls if c.id == call_id and (c.closed_line if c.closed_line is not None else c.line) == v.line), None)
            if call is not None:
                why = call.reason.value if call.reason is not None else "never answered"
                return (
                    f"the request lacks a tool message for {call_id} ({call.name}), declared on line {declared_at(call.line, call.id)}: "
                    f"the log has no result for it ({why}), so the runtime must close it",
                    v.line,
                )
    return None
