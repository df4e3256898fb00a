"""The abstract session (``ctxspec.abstract``) and its exploration (``ctxspec.explore``)."""

from __future__ import annotations

import itertools

import pytest

from ctxspec.abstract import (
    TABLES,
    AEvent,
    AState,
    Fault,
    Tables,
    Where,
    abstract_violations,
    canonical_state,
    initial_state,
    live_call_entries,
    reachable_states,
    rename,
    rename_state,
    run,
    successors,
    with_call,
)
from ctxspec.events import Assistant, Compaction, Undo
from ctxspec.explore import canonical_trace, census, concretize, ledger_where, sessions
from ctxspec.ledger import Ledger
from ctxspec.state import (
    CALL_TABLE,
    PHASE_TABLE,
    CallInput,
    CallStatus,
    Effect,
    Phase,
    Refusal,
    Step,
    allowed_events,
    validate_log,
)

#: Mutants: one entry of the call table changed.
PROJECT_LEAVES_OPEN = with_call(TABLES, CallStatus.OPEN, CallInput.PROJECT, Step(CallStatus.OPEN))
CANCEL_LEAVES_OPEN = with_call(TABLES, CallStatus.OPEN, CallInput.CANCEL, Step(CallStatus.OPEN))
LATE_RESULT_ANSWERS = with_call(TABLES, CallStatus.CLOSED, CallInput.RESULT, Step(CallStatus.ANSWERED, Effect.ANSWER))
SUMMARIZE_OPEN = with_call(TABLES, CallStatus.OPEN, CallInput.SUMMARIZE, Step(CallStatus.SUMMARIZED))


def faults_reachable(n: int, tables: Tables) -> set[Fault]:
    return {f for s in reachable_states(n, tables) for f in abstract_violations(s)}


# -- the transition follows the tables ----------------------------------------


def test_every_kind_the_phase_table_allows_is_enabled_and_lands_where_the_table_says() -> None:
    for state in reachable_states(2):
        succ = successors(state)
        assert {e.kind for e, _ in succ} == set(allowed_events(state.phase))
        for event, nxt in succ:
            assert nxt.phase is PHASE_TABLE[state.phase][event.kind]


def test_declared_calls_start_as_the_call_table_says() -> None:
    s = run([AEvent("turn.prompt"), AEvent("step.begin")], 3)[-1]
    cut = dict(successors(s))[AEvent(Assistant.type, (0, 1, 2), complete=False)]
    assert [x.status for x in cut.slots] == [CallStatus.CLOSED, CallStatus.CLOSED, CallStatus.DROPPED]
    assert [x.where for x in cut.slots] == [Where.CONTEXT, Where.CONTEXT, Where.NOWHERE]
    whole = dict(successors(s))[AEvent(Assistant.type, (0, 1))]
    assert [x.status for x in whole.slots] == [CallStatus.OPEN, CallStatus.OPEN, CallStatus.FREE]
    assert whole.exchange_open


def test_input_waits_behind_an_open_exchange_and_is_flushed_with_it() -> None:
    trace = [AEvent("turn.prompt"), AEvent("step.begin"), AEvent(Assistant.type, (0, 1)), AEvent("turn.steer")]
    states = run(trace + [AEvent("tool.result", (0,)), AEvent("tool.result", (1,))], 2)
    assert [s.queued for s in states[4:]] == [True, True, False]
    assert [s.exchange_open for s in states[4:]] == [True, True, False]
    assert not any(s.faults for s in states)


# -- the contract ---------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_fault_is_reachable_with_the_real_tables(n: int) -> None:
    assert faults_reachable(n, TABLES) == set()


def test_mutants_break_the_contract() -> None:
    assert Fault.UNPAIRED in faults_reachable(2, PROJECT_LEAVES_OPEN)
    # The cancelled call stays open in the context: the next prompt or a compaction trips.
    assert {Fault.INPUT_WHILE_OPEN, Fault.SPLIT_EXCHANGE} <= faults_reachable(1, CANCEL_LEAVES_OPEN)
    assert faults_reachable(2, LATE_RESULT_ANSWERS) == {Fault.ORPHAN}


def test_the_split_exchange_refusal_is_never_consulted() -> None:
    # An open call is always in the open exchange, which compaction never
    # covers: allowing OPEN + SUMMARIZE changes no reachable state.
    assert set(reachable_states(2, SUMMARIZE_OPEN)) == set(reachable_states(2, TABLES))


def test_the_ledger_applies_the_closing_inputs_and_never_the_split_exchange_entry() -> None:
    closing = [(CallStatus.OPEN, x) for x in (CallInput.RESULT, CallInput.CANCEL, CallInput.CRASH, CallInput.PROJECT)]
    declaring = [(CallStatus.FREE, x) for x in (CallInput.DECLARE, CallInput.DECLARE_CUT, CallInput.DECLARE_HALF)]
    split = (CallStatus.OPEN, CallInput.SUMMARIZE)
    assert isinstance(CALL_TABLE[split[0]][split[1]], Refusal)
    assert live_call_entries(2, among=[*closing, *declaring, split]) == {*closing, *declaring}


# -- renaming -------------------------------------------------------------------


def test_the_transition_commutes_with_renaming_slots() -> None:
    for state in reachable_states(3):
        for perm in itertools.permutations(range(3)):
            renamed = {(rename(e, perm), rename_state(t, perm)) for e, t in successors(state)}
            assert set(successors(rename_state(state, perm))) == renamed


@pytest.mark.parametrize("length", [3, 4])
def test_bfs_keeps_exactly_one_session_per_renaming_class(length: int) -> None:
    every = [s.trace for s in sessions(length, 2, modulo_renaming=False)]
    canonical = [s.trace for s in sessions(length, 2)]
    assert len(set(canonical)) == len(canonical)
    assert set(canonical) == {canonical_trace(t, 2) for t in every}
    assert len(every) == census(length, 2, modulo_renaming=False).total
    assert len(canonical) == census(length, 2).total


def test_sessions_come_shortest_first_and_end_in_their_state() -> None:
    found = list(sessions(3, 2))
    assert [len(s.trace) for s in found] == sorted(len(s.trace) for s in found)
    for s in found[:: max(1, len(found) // 50)]:
        assert run(s.trace, 2)[-1] == s.state
    assert canonical_state(found[0].state) == initial_state(2)


# -- concretization ---------------------------------------------------------------


def test_every_concretized_session_is_a_valid_log() -> None:
    for s in sessions(5, 2):
        log = concretize(s.trace, 2)
        assert validate_log(log) is s.state.phase
        assert len(log) == len(s.trace) + 1


def _exact(trace: tuple[AEvent, ...], states: list[AState]) -> bool:
    """Whether every compaction and undo of ``trace`` is one the ledger can do exactly."""
    for event, before in zip(trace, states):
        in_context = {i for i, s in enumerate(before.slots) if s.where is Where.CONTEXT}
        if event.kind == Compaction.type and set(event.slots) not in (set(), in_context):
            return False
        if event.kind == Undo.type and (event.partial or set(event.slots) != in_context):
            return False
    return True


def test_the_abstraction_follows_the_ledger_where_it_is_exact() -> None:
    checked = 0
    for s in sessions(4, 3):
        states = run(s.trace, 3)
        if not _exact(s.trace, states):
            continue
        checked += 1
        ledger = Ledger()
        ids: list[str | None] = [None, None, None]
        counter = 0
        for event, concrete, state in zip((None, *s.trace), concretize(s.trace, 3), states):
            ledger.feed(concrete)
            if event is not None and event.kind == Assistant.type:
                for index in event.slots:
                    counter += 1
                    ids[index] = f"call_{counter}"
            assert (ledger.pending is not None) == state.exchange_open, s.trace
            assert bool(ledger.queued) == state.queued, s.trace
            for slot, call_id in zip(state.slots, ids):
                if call_id is None:
                    assert slot.status is CallStatus.FREE
                    continue
                call = ledger.calls_by_id[call_id][-1]
                assert (call.status, ledger_where(ledger, call)) == (slot.status, slot.where), s.trace
    assert checked > 2_000


def test_census_counts_what_bfs_yields() -> None:
    c = census(4, 2)
    assert c.counts == tuple(sum(1 for s in sessions(4, 2) if len(s.trace) == k) for k in range(5))
    assert c.counts[:3] == (1, len(allowed_events(Phase.IDLE)), c.counts[2])


def test_what_one_slot_can_show_is_the_same_for_two_and_three_slots() -> None:
    # The explicit half of the "N slots suffice" argument (docs/proof.md): a
    # slot's view -- shared phase, queue flag, exchange open, its own status
    # and place -- ranges over the same set whether there are 2 or 3 slots.
    def views(n: int) -> set[tuple[Phase, bool, bool, CallStatus, Where]]:
        return {(s.phase, s.queued, s.exchange_open, x.status, x.where) for s in reachable_states(n) if not s.faults for x in s.slots}

    assert views(2) == views(3)
    assert views(1) < views(2)
