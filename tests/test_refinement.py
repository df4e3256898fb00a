"""Refinement: every step the reference projector takes is a step of the abstract model.

The stateful checker runs the refinement check after every event, beside the
contract.  Without this, the Z3 proof would say nothing about the code.  The
check can fail: mutants that change what happens to a call are caught.
"""

from __future__ import annotations

from hypothesis import given, settings

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxref.refinement import Refinement
from ctxspec.checker import contract_machine
from ctxspec.events import Assistant, Event, SessionMeta, StepBegin, StepEnd, ToolCall, TurnPrompt, TurnSteer
from ctxspec.strategies import session_logs

TestRefinedReferenceMachine = contract_machine(project, incremental=Projector, step_check=Refinement).TestCase
#: Half the ci profile's programs: the contract on the reference is test_reference's machine's
#: 1,000 programs, and the refinement alone is checked below on 1,000 logs (the suite's 10 minutes).
TestRefinedReferenceMachine.settings = settings(max_examples=500)


@settings(max_examples=500)  # half the ci profile's, as the machine above (the suite's 10 minutes)
@given(session_logs(max_events=60))
def test_reference_refines_the_abstraction(log: tuple[Event, ...]) -> None:
    check = Refinement()
    for event in log:
        assert check.feed(event) == []


def _first_failure(projector: type[Projector], log: list[Event]) -> list[str]:
    check = Refinement(projector=projector)
    for event in log:
        failures = check.feed(event)
        if failures:
            return failures
    return []


def test_a_projector_that_leaves_calls_open_is_no_refinement() -> None:
    opened: list[Event] = [SessionMeta(), TurnPrompt(text="p"), StepBegin(), Assistant(calls=(ToolCall(id="a", name="ls"),))]
    deferred = MUTANTS["prompt_deferred_forever"].cls
    assert _first_failure(deferred, opened) == []  # the call is open, as in the model
    failures = _first_failure(deferred, opened + [TurnSteer(text="s"), StepEnd(), StepBegin()])
    assert failures and failures[0].startswith("step.begin moves the projector from turn")
    assert _first_failure(Projector, opened + [TurnSteer(text="s"), StepEnd(), StepBegin()]) == []


def test_a_half_call_sent_is_no_refinement() -> None:
    half = ToolCall(id="h", name="write", args='{"pa')
    log: list[Event] = [SessionMeta(), TurnPrompt(text="p"), StepBegin(), Assistant(calls=(half,), complete=False)]
    assert _first_failure(Projector, log) == []
    assert _first_failure(MUTANTS["half_call_sent"].cls, log)
