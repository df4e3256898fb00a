"""The Z3 model (``ctxspec.z3model``): BMC, the Horn proof, and agreement with the explicit model."""

from __future__ import annotations

import dataclasses

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


# -- BMC at the size of the issue, and the per-slot lemma ---------------------------


def test_bmc_to_depth_30_with_4_slots_finds_no_violation() -> None:
    result = z3model.bmc(30, 4)
    assert not result.found and "no violation within 30 events (4 slots" in str(result)


@pytest.mark.parametrize(
    "tables", [TABLES, PROJECT_LEAVES_OPEN, LATE_RESULT_ANSWERS], ids=["real", "project-leaves-open", "late-result-answers"]
)
def test_the_per_slot_lemma_changes_no_bmc_answer(tables: Tables) -> None:
    strengthened, plain = z3model.bmc(8, 2, tables), z3model.bmc(8, 2, tables, lemma=False)
    assert strengthened.found == plain.found and strengthened.faults == plain.faults
    if plain.trace is not None:
        assert strengthened.trace is not None and len(strengthened.trace) == len(plain.trace)


def test_bitvector_domains_whose_size_is_a_power_of_two_have_valid_values() -> None:
    # Phase and Where have 4 values in 2 bits: "< 4" must not wrap to "< 0".
    s = z3model.state_vars(z3model.BITVEC, 2, "v")
    solver = z3.SolverFor("QF_FD")
    solver.add(z3model.frame_valid(z3model.BITVEC, s))
    assert solver.check() == z3.sat


# -- why N slots suffice -------------------------------------------------------------


def test_the_views_a_slot_can_show_do_not_depend_on_n_from_two_slots_on() -> None:
    from_init = {n: z3model.slot_invariant(n, seeded=False) for n in (1, 2, 3)}
    seeded = {n: z3model.slot_invariant(n) for n in (4, 5, 6)}
    views = from_init[2].views
    assert all(inv.safe for inv in [*from_init.values(), *seeded.values()])
    assert from_init[3].views == views and all(inv.views == views for inv in seeded.values())
    assert from_init[1].views < views  # one slot never shares the exchange with another call
    assert z3model.explicit_views(2) == z3model.explicit_views(3) == views


def test_the_per_slot_invariant_is_inductive_and_safe_up_to_the_cutoff() -> None:
    # docs/proof.md: a counterexample to induction for any N shrinks to one
    # with at most 5 slots, so N = 1..7 covers every N.
    views = z3model.slot_invariant(2).views
    for n in range(1, 8):
        assert z3model.views_inductive(views, n) == (True, True), n


def test_dropping_a_slot_from_a_reachable_state_need_not_give_a_reachable_state() -> None:
    # Why the argument is about what one slot shows, not about whole states:
    # with one slot an answered exchange is flushed at once, so this
    # projection of a reachable two-slot state is unreachable with one slot.
    trace = [AEvent("turn.prompt"), AEvent("step.begin"), AEvent("assistant", (0, 1)), AEvent("turn.steer"), AEvent("tool.result", (1,))]
    state = run(trace, 2)[-1]
    assert str(state) == "replied [open@exchange answered@exchange] queued"
    projected = dataclasses.replace(state, slots=state.slots[1:])
    assert str(projected) == "replied [answered@exchange] queued"
    assert projected not in reachable_states(1)
    # ... but every view of it is a view some slot shows (the per-slot invariant).
    views = z3model.slot_invariant(2).views
    assert all((state.phase, state.queued, state.exchange_open, s.status, s.where) in views for s in state.slots)


# -- the report of ``ctxcontract prove`` ----------------------------------------------


def test_the_report_shows_the_bounded_result_the_proof_and_the_invariant() -> None:
    report = z3model.prove_report(2, 8)
    text = report.render()
    assert report.proved and report.proof.formula is not None
    assert "no violation within 8 events" in text
    assert "proved: no fault is reachable" in text and text.endswith("Result: proved for 2 slots")
    assert "re-checked inductive and safe: yes" in text
    for line in z3model.render_invariant(report.proof.formula):
        assert f"    {line}\n" in text
    assert "status0 = open -> where0 = exchange" in text and "@s" not in text
    assert "open@exchange" in text  # the per-slot views


def test_the_report_of_a_mutant_shows_a_shortest_trace_one_event_per_line() -> None:
    report = z3model.prove_report(2, 10, PROJECT_LEAVES_OPEN)
    text = report.render()
    assert not report.proved and report.bmc.trace is not None
    assert "VIOLATION UNPAIRED after 5 events" in text and "refuted" in text and "NOT proved" in text
    lines = text.splitlines()
    for i, event in enumerate(report.bmc.trace, 1):
        assert any(line.strip().startswith(f"{i}. {event}") for line in lines), event
