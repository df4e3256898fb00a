"""Each rule of the contract catches the corruption it is about.

Every test starts from the reference projection of a small hand-written log
(which must be clean) and breaks it in one way; the named rule must fire.
This is how we know no predicate is one that cannot fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from ctxref.projector import Projector, project
from ctxspec.contract import RULES, Violation, check_messages, check_projection, check_session
from ctxspec.events import (
    Assistant,
    Compaction,
    Event,
    Resume,
    SessionMeta,
    StepBegin,
    StepEnd,
    ToolCall,
    ToolResult,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
)
from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage
from ctxspec.policy import PRESETS, UserMessages
from ctxspec.state import validate_log

A = ToolCall(id="a", name="ls", args='{"p": "."}')
B = ToolCall(id="b", name="cat", args='{"p": "x"}')

LOG: list[Event] = [
    SessionMeta(system="sys"),  # 1
    TurnPrompt(text="p1"),  # 2
    StepBegin(),  # 3
    Assistant(calls=(A, B)),  # 4
    TurnSteer(text="s1"),  # 5: arrives while a and b run
    ToolResult(call_id="b", output="rb"),  # 6: out of order
    ToolResult(call_id="a", output="ra"),  # 7
    StepEnd(finish_reason="tool_calls"),  # 8
    StepBegin(),  # 9
    Assistant(text="done"),  # 10
    StepEnd(),  # 11
    TurnEnd(),  # 12
]


def rules(log: Sequence[Event], messages: Sequence[Message]) -> set[str]:
    return {v.rule for v in check_projection(log, messages)}


def test_the_reference_projection_of_the_scenario() -> None:
    msgs = project(LOG)
    assert msgs == [
        SystemMessage(text="sys"),
        UserMessage(text="p1"),
        AssistantMessage(calls=(A, B)),
        ToolMessage(call_id="a", content="ra"),
        ToolMessage(call_id="b", content="rb"),
        UserMessage(text="s1"),
        AssistantMessage(text="done"),
    ]
    assert check_session(LOG, project, incremental=Projector) == []


def test_rule_codes_are_numbered() -> None:
    assert list(RULES) == [f"C{i}" for i in range(1, 13)]
    assert "C1 pairing [reject]: x (message 3, log line 4)" == str(Violation("C1", "x", 3, 4))


def test_c1_missing_tool_message() -> None:
    msgs = project(LOG)
    del msgs[3]
    assert {"C1", "C4"} <= rules(LOG, msgs)


def test_c1_wrong_order() -> None:
    msgs = project(LOG)
    msgs[3], msgs[4] = msgs[4], msgs[3]
    assert "C1" in rules(LOG, msgs)


def test_c2_orphan_tool_message() -> None:
    msgs = project(LOG) + [ToolMessage(call_id="zz", content="?")]
    assert "C2" in rules(LOG, msgs)
    assert [v.rule for v in check_messages([UserMessage(text="u"), ToolMessage(call_id="x", content="")])] == ["C2"]


def test_c2_duplicate_answer() -> None:
    msgs = project(LOG)
    msgs.insert(5, ToolMessage(call_id="b", content="rb"))
    assert "C2" in rules(LOG, msgs)


def test_c3_duplicate_ids() -> None:
    same = [UserMessage(text="u"), AssistantMessage(calls=(A,)), ToolMessage(call_id="a", content="1"), AssistantMessage(calls=(A,)), ToolMessage(call_id="a", content="2")]
    assert [v.rule for v in check_messages(same)] == ["C3"]


def test_c3_first_use_keeps_its_id() -> None:
    msgs = project(LOG)
    msgs[2] = AssistantMessage(calls=(replace(A, id="renamed"), B))
    msgs[3] = ToolMessage(call_id="renamed", content="ra")
    assert "C3" in rules(LOG, msgs)


def test_c4_result_altered_or_flagged() -> None:
    msgs = project(LOG)
    msgs[3] = ToolMessage(call_id="a", content="(output omitted)")
    assert rules(LOG, msgs) == {"C4"}
    msgs[3] = ToolMessage(call_id="a", content="ra", is_error=True, synthetic=True)
    assert rules(LOG, msgs) == {"C4"}


CRASH: list[Event] = [SessionMeta(), TurnPrompt(text="p1"), StepBegin(), Assistant(calls=(A,)), Resume(), TurnPrompt(text="p2"), StepBegin()]


def test_c5_synthetic_result_must_say_why() -> None:
    msgs = project(CRASH)
    assert isinstance(msgs[2], ToolMessage) and "crash" in msgs[2].content
    assert rules(CRASH, msgs) == set()
    msgs[2] = ToolMessage(call_id="a", content="error", is_error=True, synthetic=True)
    assert rules(CRASH, msgs) == {"C5"}
    del msgs[2]
    assert "C5" in rules(CRASH, msgs)


def test_c6_steer_inside_the_block() -> None:
    msgs = project(LOG)
    steer = msgs.pop(5)
    msgs.insert(3, steer)
    assert "C6" in rules(LOG, msgs)


def test_c6_input_deferred_or_reordered() -> None:
    msgs = project(LOG)
    steer = msgs.pop(5)
    msgs.append(steer)  # after the reply that followed it
    assert "C6" in rules(LOG, msgs)


COMPACTED: list[Event] = LOG + [Compaction(summary="they listed files", upto=12), TurnPrompt(text="p2"), StepBegin()]


def test_c7_summary_first_and_nothing_summarized_sent() -> None:
    msgs = project(COMPACTED)
    assert msgs[1] == UserMessage(text="[summary of the earlier conversation]\nthey listed files")
    assert rules(COMPACTED, msgs) == set()
    assert "C7" in rules(COMPACTED, [msgs[0], msgs[2]])
    old = project(LOG)[2:5]
    assert "C7" in rules(COMPACTED, msgs[:2] + old + msgs[2:])


def test_c7_bad_cut_keeps_the_exchange_whole() -> None:
    cut_inside = LOG + [Compaction(summary="s", upto=5), TurnPrompt(text="p2"), StepBegin()]
    msgs = project(cut_inside)
    assert AssistantMessage(calls=(A, B)) in msgs and rules(cut_inside, msgs) == set()


def test_c8_lost_prompt_and_invented_message() -> None:
    msgs = project(LOG)
    assert "C8" in rules(LOG, msgs[:1] + msgs[2:])
    assert "C8" in rules(LOG, msgs + [UserMessage(text="made up")])


def test_c8_late_result_must_arrive_as_a_note() -> None:
    late = CRASH + [ToolResult(call_id="a", output="finally")]
    msgs = project(late)
    assert "finally" in msgs[-1].text  # type: ignore[union-attr]
    assert rules(late, msgs) == set()
    assert "C8" in rules(late, msgs[:-1])


def test_c9_history_rewritten_between_requests() -> None:
    def restamped(log: Sequence[Event]) -> list[Message]:
        """Synthetic results carry the request's length: each request valid, the cache busted."""
        return [
            replace(m, content=f"{m.content} (request {len(log)})") if isinstance(m, ToolMessage) and m.synthetic else m
            for m in project(log)
        ]

    log = [SessionMeta(), TurnPrompt(text="p1"), StepBegin(), Assistant(calls=(A,)), StepEnd(), StepBegin(), Assistant(text="r"), StepEnd(), StepBegin()]
    found = check_session(log, restamped)
    assert {v.rule for v in found} == {"C9"} and found[0].line == 9
    assert check_session(log, project) == []


def test_c10_shape() -> None:
    assert [v.rule for v in check_messages([AssistantMessage(text="hi")])] == ["C10"]
    assert [v.rule for v in check_messages([UserMessage(text="")])] == ["C10"]
    assert [v.rule for v in check_messages([UserMessage(text="u"), AssistantMessage()])] == ["C10"]


def test_c10_half_streamed_call() -> None:
    half = ToolCall(id="h", name="write", args='{"path": "/tm')
    log = [SessionMeta(), TurnPrompt(text="p"), StepBegin(), Assistant(text="writing", calls=(half,), complete=False), StepEnd(), StepBegin()]
    msgs = project(log)
    assert msgs == [UserMessage(text="p"), AssistantMessage(text="writing")]
    sent = [UserMessage(text="p"), AssistantMessage(text="writing", calls=(half,)), ToolMessage(call_id="h", content="stream cut", is_error=True, synthetic=True)]
    assert "C10" in rules(log, sent)


def test_c11_nondeterminism_and_incremental_mismatch() -> None:
    counter = itertools.count()

    def flaky(log: Sequence[Event]) -> list[Message]:
        return project(log) + [UserMessage(text=f"tick {next(counter)}")]

    assert "C11" in {v.rule for v in check_session(LOG, flaky)}

    class Lagging(Projector):
        def messages(self) -> list[Message]:
            return super().messages()[:-1]

    assert "C11" in {v.rule for v in check_session(LOG, project, incremental=Lagging)}


def test_c11_idle_resume_is_transparent() -> None:
    class LineIds(Projector):
        """Renames a reused id after its log line: removing a line renames it."""

        def _rename(self, orig: str, line: int) -> str:
            return orig if orig not in self._used else f"{orig}@{line}"

    def line_ids(log: Sequence[Event]) -> list[Message]:
        p = LineIds()
        for e in log:
            p.feed(e)
        return p.messages()

    log = LOG + [Resume(), TurnPrompt(text="p2"), StepBegin(), Assistant(calls=(A,)), StepEnd(finish_reason="tool_calls"), StepBegin()]
    assert check_session(log, project) == []
    found = check_session(log, line_ids)
    assert [v.rule for v in found] == ["C11"] and found[0].line == 13


def test_c11_removes_only_a_resume_whose_removal_leaves_a_log() -> None:
    """A resume ends a running turn; without it the next prompt would arrive during the turn.

    A projector that validates what it is given owes nothing for such a log:
    before, the idle-resume check handed it one and reported its refusal (C12).
    """

    def validating(log: Sequence[Event]) -> list[Message]:
        validate_log(log)
        return project(log)

    def needs_resume(log: Sequence[Event]) -> list[Message]:
        out = project(log)
        return out if any(e.type == "resume" for e in log) else [*out, UserMessage(text="no resume")]

    in_turn = [SessionMeta(), TurnPrompt(text="a"), Resume(), TurnPrompt(text="b"), StepBegin()]
    assert check_session(in_turn, validating) == [] and check_session(in_turn, needs_resume) == []
    idle = [SessionMeta(), Resume(), TurnPrompt(text="b"), StepBegin()]
    assert check_session(idle, validating) == []
    assert [(v.rule, v.line) for v in check_session(idle, needs_resume)] == [("C11", 2)]  # still checked where it can be


def test_c12_a_projector_that_raises() -> None:
    def broken(log: Sequence[Event]) -> list[Message]:
        raise KeyError("TodoList:3")

    assert [v.rule for v in check_session(LOG, broken)] == ["C12"]


def test_check_messages_reports_only_the_message_level_rules() -> None:
    """MESSAGE_RULES (what `check` lists for a message file) names every rule check_messages can report."""
    from pathlib import Path

    from ctxref.mutants import MUTANTS
    from ctxspec.contract import MESSAGE_RULES
    from ctxspec.events import load_log

    seen: set[str] = set()
    for name, mutant in MUTANTS.items():
        log = load_log(str(Path(__file__).parent / "regressions" / f"{name}.jsonl"))
        seen |= {v.rule for v in check_messages(mutant.project(log))}
    assert seen and seen <= set(MESSAGE_RULES)


def test_an_empty_late_result_is_found_where_it_belongs() -> None:
    # An empty output is in every message: under merged user messages the note was once
    # placed in the prompt's message, "before the tool block" (a false C6 the generator found).
    log = [*LOG[:7], ToolResult(call_id="a", output=""), StepEnd(finish_reason="tool_calls"), StepBegin()]
    merged = replace(PRESETS["reference"], user_messages=UserMessages.MERGED, name="merged")
    for policy in (PRESETS["reference"], merged, PRESETS["claude-code"]):
        assert check_projection(log, project(log, policy), policy=policy) == []
    # and where it does not belong, it is not found: left out, it is missing (C8), not misplaced
    without = [m for m in project(log) if not (isinstance(m, UserMessage) and "late tool result" in m.text)]
    assert [(v.rule, v.line) for v in check_projection(log, without)] == [("C8", 8)]
