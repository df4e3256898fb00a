"""The Z3 model (``ctxspec.z3model``): BMC, the Horn proof, and agreement with the explicit model."""

from __future__ import annotations

import pytest
import z3

from ctxspec import z3model
from ctxspec.abstract import TABLES, AEvent, Fault, Tables, initial_state, reachable_states, run, successors, with_call
from ctxspec.explore import canonical_trace, sessions
from ctxspec.state import CallInput, CallStatus, Effect, Step

PROJECT_LEAVES_OPEN = with_call(TABLES, CallStatus.OPEN, CallInput.PROJECT, Step(CallStatus.OPEN))
LATE_RESULT_ANSWERS = with_call(TABLES, CallStatus.CLOSED, CallInput.RESULT, Step(CallStatus.ANSWERED, Effect.ANSWER))
SUMMARIZE_OPEN = with_call(TABLES, CallStatus.OPEN, CallInput.SUMMARIZE, Step(CallStatus.SUMMARIZED))


# -- the real tables --------------------------------------------------------------


def test_bmc_finds_no_violation() -> None:
    result = z3model.bmc(8, 2)
    assert not result.found and result.trace is None
    assert "no violation within 8" in str(result)


def test_the_horn_engine_proves_the_contract_and_its_invariant_checks() -> None:
    for n in (2, 3):
        result = z3model.prove(n)
        assert result.proved, result
        assert result.invariant is not None and "Inv(s)" in str(result)
        assert z3model.check_invariant(result.formula, n)


def test_check_invariant_rejects_unsafe_and_non_inductive_formulas() -> None:
    s = z3model.state_vars(z3model.ENUM, 2, "s")
    init = z3model.frame_value(z3model.ENUM, initial_state(2))
    only_init = z3.And([a == b for a, b in zip(z3model.frame_terms(s), z3model.frame_terms(init))])
    assert not z3model.check_invariant(z3.BoolVal(True), 2)  # not safe
    assert not z3model.check_invariant(only_init, 2)  # safe, not inductive


# -- mutants: the checks can fail --------------------------------------------------


@pytest.mark.parametrize(
    ("tables", "fault", "length"),
    [(PROJECT_LEAVES_OPEN, Fault.UNPAIRED, 5), (LATE_RESULT_ANSWERS, Fault.ORPHAN, 4)],
    ids=["project-leaves-open", "late-result-answers"],
)
def test_a_mutated_table_gives_a_shortest_counterexample_and_no_proof(tables: Tables, fault: Fault, length: int) -> None:
    result = z3model.bmc(10, 2, tables)
    assert result.found and result.trace is not None
    assert len(result.trace) == length
    assert fault in result.faults
    assert fault in run(result.trace, 2, tables)[-1].faults
    assert not z3model.bmc(length - 1, 2, tables).found  # shortest
    assert z3model.prove(2, tables).status == "unsat"


def test_summarizing_an_open_call_is_unreachable_so_that_mutant_survives() -> None:
    # The table refuses OPEN + SUMMARIZE (split_exchange), but the ledger never
    # asks: an open call is always in the open exchange, which compaction
    # never covers.  The proof shows it; the mutant is equivalent.
    assert not z3model.bmc(10, 2, SUMMARIZE_OPEN).found
    assert z3model.prove(2, SUMMARIZE_OPEN).proved


def test_the_enum_encoding_finds_the_same_counterexample() -> None:
    bv = z3model.bmc(8, 2, PROJECT_LEAVES_OPEN)
    enum = z3model.bmc(8, 2, PROJECT_LEAVES_OPEN, codec=z3model.ENUM, logic="ALL")
    assert bv.trace is not None and enum.trace is not None and len(bv.trace) == len(enum.trace)


# -- Z3 and the explicit model agree -----------------------------------------------


def test_z3_successors_are_the_python_successors_on_every_reachable_state() -> None:
    for state in reachable_states(2):
        assert set(z3model.successors(state)) == set(successors(state)), state


@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_blocking_clause_enumeration_agrees_with_bfs(length: int) -> None:
    by_z3 = z3model.enumerate_traces(length, 2)
    assert len(by_z3) == len(set(by_z3))
    every = {s.trace for s in sessions(length, 2, modulo_renaming=False) if len(s.trace) == length}
    canonical = {s.trace for s in sessions(length, 2) if len(s.trace) == length}
    assert set(by_z3) == every
    assert {canonical_trace(t, 2) for t in by_z3} == canonical


def test_decoded_events_are_candidate_events() -> None:
    trace = z3model.bmc(6, 2, PROJECT_LEAVES_OPEN).trace
    assert trace is not None and all(isinstance(e, AEvent) for e in trace)
