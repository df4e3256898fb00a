"""The state machine's tables are total, and the validator and strategies follow them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxspec.errors import InvalidLog
from ctxspec.events import EVENT_TYPES, Compaction, Event, SessionMeta, StepBegin, StepEnd, TurnPrompt, TurnSteer, parse_log
from ctxspec.state import (
    CALL_TABLE,
    EVENT_KINDS,
    PHASE_TABLE,
    CallInput,
    CallStatus,
    Phase,
    Refusal,
    Step,
    allowed_events,
    route_result,
    validate_log,
)
from ctxspec.strategies import session_logs


@given(st.sampled_from(list(Phase)), st.sampled_from(sorted(EVENT_TYPES)))
def test_phase_table_is_total(phase: Phase, kind: str) -> None:
    target = PHASE_TABLE[phase][kind]
    assert isinstance(target, (Phase, Refusal))
    if isinstance(target, Refusal):
        assert target.name and target.why


@given(st.sampled_from(list(CallStatus)), st.sampled_from(list(CallInput)))
def test_call_table_is_total(status: CallStatus, call_input: CallInput) -> None:
    target = CALL_TABLE[status][call_input]
    assert isinstance(target, (Step, Refusal))


def test_tables_have_no_extra_keys() -> None:
    for row in PHASE_TABLE.values():
        assert set(row) == set(EVENT_TYPES)
    for call_row in CALL_TABLE.values():
        assert set(call_row) == set(CallInput)
    assert set(PHASE_TABLE) == set(Phase) and set(CALL_TABLE) == set(CallStatus)


def test_every_event_kind_can_happen_somewhere() -> None:
    for kind in EVENT_KINDS:
        assert any(kind in allowed_events(p) for p in Phase), kind


def test_every_phase_is_reachable_and_can_reach_idle() -> None:
    seen = {Phase.IDLE}
    frontier = [Phase.IDLE]
    while frontier:
        phase = frontier.pop()
        for kind in allowed_events(phase):
            nxt = PHASE_TABLE[phase][kind]
            assert isinstance(nxt, Phase)
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(Phase)
    assert all(PHASE_TABLE[p]["resume"] is Phase.IDLE for p in Phase)  # a crash is possible anywhere


def test_open_calls_are_never_summarized() -> None:
    assert isinstance(CALL_TABLE[CallStatus.OPEN][CallInput.SUMMARIZE], Refusal)


def test_routing_prefers_the_earliest_open_call() -> None:
    assert route_result([CallStatus.ANSWERED, CallStatus.OPEN, CallStatus.OPEN]) == 1
    assert route_result([CallStatus.ANSWERED, CallStatus.CLOSED]) == 1
    assert route_result([]) is None


@given(session_logs())
def test_generated_logs_are_valid(log: tuple[Event, ...]) -> None:
    validate_log(log)


@pytest.mark.parametrize(
    "events, line, refusal",
    [
        ([TurnSteer(text="x")], 2, "steer_outside_turn"),
        ([TurnPrompt(text="a"), TurnPrompt(text="b")], 3, "prompt_during_turn"),
        ([TurnPrompt(text="a"), StepEnd()], 3, "end_outside_step"),
        ([TurnPrompt(text="a"), StepBegin(), StepBegin()], 4, "step_during_step"),
        ([TurnPrompt(text="a"), Compaction(summary="s", upto=3)], 3, "must name an earlier line"),
    ],
)
def test_refusals_are_named_with_their_line(events: list[Event], line: int, refusal: str) -> None:
    with pytest.raises(InvalidLog) as info:
        validate_log([SessionMeta(), *events])
    assert info.value.line == line
    assert refusal in info.value.message


def test_validate_log_returns_the_final_phase() -> None:
    log = parse_log('{"type":"session.meta"}\n{"type":"turn.prompt","text":"hi"}\n{"type":"step.begin"}\n')
    assert validate_log(log) is Phase.STEP
