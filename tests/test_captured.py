"""A captured request judged as a projection of its log (ctxspec.captured): the properties.

The reference projection at any request of a generated log, taken as the
captured request, is judged clean, at its own point, whatever its system
prompt and argument whitespace; the same request with one answered call's
tool message taken out is exactly one finding, about that call, naming its
result's log line.  The mutants below (no grouping, no JSON arguments, no
choice of point) each fail one of these; ``test_the_properties_can_fail``
keeps them honest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxref.formats import load, load_text
from ctxref.projector import Projector
from ctxspec import captured
from ctxspec.captured import Judgement, judge_request
from ctxspec.contract import REFERENCE, check_messages
from ctxspec.events import Event, StepBegin
from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage, messages_from_openai
from ctxspec.rules import Level
from ctxspec.strategies import session_logs

Judge = Callable[[Sequence[Event], Sequence[Message]], Judgement]


def _judge(log: Sequence[Event], request: Sequence[Message]) -> Judgement:
    return judge_request(log, request, REFERENCE, declared=True)


def _points(log: Sequence[Event]) -> list[int]:
    return [i + 1 for i, e in enumerate(log) if isinstance(e, StepBegin)]


def _projection(log: Sequence[Event]) -> list[tuple[Message, int]]:
    p = Projector(policy=REFERENCE)
    for e in log:
        p.feed(e)
    return p.sourced_messages()


def _compact(m: Message, system: str) -> Message:
    """As a runtime may send it: its own system prompt, arguments without spaces."""
    if isinstance(m, SystemMessage):
        return SystemMessage(text=system)
    if isinstance(m, AssistantMessage):
        return replace(m, calls=tuple(replace(c, args=_compact_json(c.args)) for c in m.calls))
    return m


def _compact_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:  # not JSON: sent as it is
        return text


def clean_requests_are_clean(judge: Judge, log: Sequence[Event], k: int) -> None:
    points = _points(log)
    if not points:
        return
    point = points[k % len(points)]
    request = [_compact(m, "Runtime prompt, with tools and a date.") for m, _ in _projection(log[:point])]
    judged = judge(log, request)
    assert judged.findings == (), judged.findings
    assert _projection(log[: judged.point]) == _projection(log[:point])  # the same request, if not the same point


def a_missing_tool_message_is_one_finding(judge: Judge, log: Sequence[Event], k: int) -> None:
    points = _points(log)
    for point in points[k % max(1, len(points)) :] + points[: k % max(1, len(points))]:
        sourced = _projection(log[:point])
        answered = [i for i, (m, line) in enumerate(sourced) if isinstance(m, ToolMessage) and not m.synthetic and line]
        if not answered:
            continue
        gone = answered[k % len(answered)]
        tool = sourced[gone][0]
        assert isinstance(tool, ToolMessage)
        request = [m for i, (m, _) in enumerate(sourced) if i != gone]
        judged = judge(log, request)
        assert [(f.rule, f.level, f.call, f.line) for f in judged.findings] == [("C1", Level.REJECT, tool.call_id, sourced[gone][1])], judged.findings
        finding = judged.findings[0]
        assert finding.index is not None and 0 <= finding.index < len(request)
        assert f"lacks the tool message for {tool.call_id}" in finding.what and f"its result is on line {sourced[gone][1]}" in finding.what
        return


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(session_logs(max_events=40), st.integers(0, 1000))
def test_the_reference_projection_at_any_request_is_judged_clean(log: tuple[Event, ...], k: int) -> None:
    clean_requests_are_clean(_judge, log, k)


def _answers(log: Sequence[Event]) -> bool:
    """Whether some request of ``log`` carries a logged result: the logs the next property is about."""
    return any(isinstance(m, ToolMessage) and not m.synthetic and line for p in _points(log) for m, line in _projection(log[:p]))


logs_with_answers = session_logs(max_events=40).filter(_answers)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(logs_with_answers, st.integers(0, 1000))
def test_a_request_lacking_one_tool_message_is_exactly_that_finding(log: tuple[Event, ...], k: int) -> None:
    a_missing_tool_message_is_one_finding(_judge, log, k)


# -- the mutants: each property must be able to fail ---------------------------------------


def _ungrouped(log: Sequence[Event], request: Sequence[Message]) -> Judgement:
    """Every violation its own fact."""
    original = captured._facts
    captured._facts = lambda found: [[v] for v in found]
    try:
        return _judge(log, request)
    finally:
        captured._facts = original


def _textual(log: Sequence[Event], request: Sequence[Message]) -> Judgement:
    """Arguments compared as text: the runtime's whitespace becomes a finding."""
    original = captured.Arguments
    captured.Arguments = type("Text", (), {"JSON": REFERENCE.arguments})  # type: ignore[misc, assignment]
    try:
        return _judge(log, request)
    finally:
        captured.Arguments = original  # type: ignore[misc]


def _last_point(log: Sequence[Event], request: Sequence[Message]) -> Judgement:
    """Always the end of the log: a request captured earlier is blamed for what came after."""
    original = captured._points
    captured._points = lambda log, request: ([len(log)], [])
    try:
        return _judge(log, request)
    finally:
        captured._points = original


#: Every bundled session log, in every format: the mutants must die on one of them.
EXAMPLE_LOGS = sorted(
    p for d in ("", "kimi-wire", "codex", "claude") for p in (Path(__file__).parent.parent / "examples" / d).glob("*.jsonl") if "request" not in p.name
)


@pytest.mark.parametrize(
    ("mutant", "prop"),
    [(_ungrouped, a_missing_tool_message_is_one_finding), (_textual, clean_requests_are_clean), (_last_point, clean_requests_are_clean)],
    ids=["ungrouped", "arguments-as-text", "always-the-last-point"],
)
def test_the_properties_can_fail(mutant: Judge, prop: Callable[[Judge, Sequence[Event], int], None]) -> None:
    """On the bundled examples (not a random search: its examples depend on the process's state)."""
    killed = []
    for path in EXAMPLE_LOGS:
        for k in range(3):
            try:
                prop(mutant, _log(path), k)
            except AssertionError:
                killed.append((path.name, k))
    assert killed, f"{mutant.__name__} passes {prop.__name__} on every example"
    for k in range(3):  # and the real judge passes them all
        for path in EXAMPLE_LOGS:
            prop(_judge, _log(path), k)


# -- message lists: every unanswered call listed, every index valid ------------------------


@st.composite
def message_lists(draw: st.DrawFn) -> list[Message]:
    ids = ["a", "b", "c"]
    out: list[Message] = [UserMessage(text="go")]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["user", "reply", "calls", "tool"]))
        if kind == "user":
            out.append(UserMessage(text="more"))
        elif kind == "reply":
            out.append(AssistantMessage(text="ok"))
        elif kind == "calls":
            chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
            out.append(AssistantMessage(text="", calls=tuple(ToolCall(id=i, name="Shell", args="{}") for i in chosen)))
        else:
            out.append(ToolMessage(call_id=draw(st.sampled_from(ids)), content="done"))
    return out


@settings(max_examples=300)
@given(message_lists())
def test_every_unanswered_call_is_listed_at_a_valid_index(messages: list[Message]) -> None:
    found = check_messages(messages)
    assert all(v.index is None or 0 <= v.index < len(messages) for v in found), found
    unanswered = []
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage):
            block = []
            k = i + 1
            while k < len(messages) and isinstance(messages[k], ToolMessage):
                block.append(messages[k].call_id)  # type: ignore[union-attr]
                k += 1
            unanswered += [(i, c.id) for c in m.calls if c.id not in block]
    assert sorted(v.call for v in found if v.rule == "C1" and v.level is Level.REJECT) == sorted(c for _, c in unanswered)  # type: ignore[type-var]


# -- what a runtime does that is not a defect, and what is ---------------------------------

CRASH = Path(__file__).parent.parent / "examples" / "crash-mid-parallel.jsonl"


def _log(path: Path) -> tuple[Event, ...]:
    return load(str(path)).log


def _request(*objs: dict[str, object]) -> tuple[Message, ...]:
    return messages_from_openai(list(objs))


def _call(*ids: str) -> dict[str, object]:
    cmd = {"call_1": "pytest", "call_2": "ruff check"}
    return {"role": "assistant", "content": "", "tool_calls": [{"id": i, "type": "function", "function": {"name": "Shell", "arguments": json.dumps({"cmd": cmd[i]})}} for i in ids]}


#: What a runtime sent at line 8 of the crash example: its own words for the lost call.
AFTER_CRASH = (
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "Run the tests and the linter."},
    _call("call_1", "call_2"),
    {"role": "tool", "tool_call_id": "call_1", "content": "No output."},
    {"role": "tool", "tool_call_id": "call_2", "content": "All checks passed!"},
    {"role": "user", "content": "continue"},
)


def test_a_request_from_the_middle_of_the_log_is_judged_at_its_own_request() -> None:
    judged = judge_request(_log(CRASH), _request(*AFTER_CRASH), REFERENCE, declared=False)
    assert (judged.point, judged.step_line, judged.findings) == (8, 8, ())
    assert judged.notes[0] == "the request has a system prompt the log does not record; it is not judged"
    assert judged.notes[1:] == ("a different policy, not a defect: synthetic result of 'call_1' does not say why (lost at crash): 'No output.'",)


def test_under_a_declared_policy_its_wording_is_a_policy_finding() -> None:
    judged = judge_request(_log(CRASH), _request(*AFTER_CRASH), REFERENCE, declared=True)
    assert [(f.rule, f.level, f.call, f.index) for f in judged.findings] == [("C5", Level.POLICY, "call_1", 3)]


def test_a_tool_message_that_answers_nothing_is_a_reject_at_its_own_index() -> None:
    stray = {"role": "tool", "tool_call_id": "call_9", "content": "done"}
    judged = judge_request(_log(CRASH), _request(*AFTER_CRASH[:5], stray, AFTER_CRASH[5]), REFERENCE, declared=False)
    assert [(f.rule, f.level, f.call, f.index) for f in judged.findings] == [("C2", Level.REJECT, "call_9", 5)]


def test_an_unanswered_call_without_a_result_says_the_runtime_must_close_it() -> None:
    judged = judge_request(_log(CRASH), _request(*AFTER_CRASH[:3], AFTER_CRASH[4], AFTER_CRASH[5]), REFERENCE, declared=False)
    [finding] = judged.findings
    assert (finding.rule, finding.level, finding.call, finding.line) == ("C1", Level.REJECT, "call_1", 6)
    assert finding.what == "the request lacks a tool message for call_1 (Shell), declared on line 4: the log has no result for it (lost at crash), so the runtime must close it"


def test_merged_user_messages_are_a_note_unless_the_policy_is_declared(tmp_path: Path) -> None:
    log = "\n".join(
        json.dumps(e)
        for e in (
            {"type": "session.meta", "version": 1, "system": ""},
            {"type": "notification", "text": "The build finished."},
            {"type": "turn.prompt", "text": "Deploy it."},
            {"type": "step.begin"},
        )
    )
    events = load_text(log).log
    merged = _request({"role": "user", "content": "The build finished.\n\nDeploy it."})
    assert judge_request(events, merged, REFERENCE, declared=False).findings == ()
    assert [(f.rule, f.level, f.line) for f in judge_request(events, merged, REFERENCE, declared=True).findings] == [("C6", Level.POLICY, 2), ("C6", Level.POLICY, 3)]
    lost = _request({"role": "user", "content": "Deploy it."})
    assert [(f.rule, f.level, f.line) for f in judge_request(events, lost, REFERENCE, declared=False).findings] == [("C8", Level.LOSS, 2)]


def test_the_runtimes_own_summary_wording_is_not_a_finding() -> None:
    log = _log(Path(__file__).parent.parent / "examples" / "compaction-cut.jsonl")
    request = _request(
        {"role": "user", "content": "<conversation-summary>The user asked for the slow test; a grep for sleep is running.</conversation-summary>"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "g1", "type": "function", "function": {"name": "Grep", "arguments": '{ "pattern": "sleep" }'}}]},
        {"role": "tool", "tool_call_id": "g1", "content": "tests/test_io.py:88: time.sleep(30)"},
    )
    assert judge_request(log, request, REFERENCE, declared=True).findings == ()


def test_a_call_is_named_by_its_own_record() -> None:
    """In a Codex rollout the call's ``function_call`` line, not the reasoning item that opens its reply."""
    imp = load(str(Path(__file__).parent.parent / "examples" / "codex" / "crash-mid-parallel.jsonl"))
    sourced = _projection(imp.log)
    request = [m for m in (m for m, _ in sourced) if not (isinstance(m, ToolMessage) and m.call_id == "call_pyt")]
    judged = judge_request(imp.log, request, REFERENCE, declared=False, origin=imp.origin, call_origin=imp.call_origin)
    [finding] = judged.findings
    assert finding.call == "call_pyt" and "declared on line 8:" in finding.what, finding
    without = judge_request(imp.log, request, REFERENCE, declared=False, origin=imp.origin)
    assert "declared on line 7:" in without.findings[0].what  # the reply's first record: the reasoning item
