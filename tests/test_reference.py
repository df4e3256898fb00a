"""The reference projector against the whole contract, on every log the model can produce."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, fed, project, project_with_repairs
from ctxspec.checker import contract_machine, run_machine
from ctxspec.contract import check_session
from ctxspec.events import Event, load_log
from ctxspec.ledger import ledger_of
from ctxspec.messages import Message
from ctxspec.policy import Policy
from ctxspec.strategies import policies, session_logs



def _following(policy: Policy) -> tuple[Callable[[Sequence[Event]], list[Message]], Callable[[], Projector]]:
    return partial(project, policy=policy), partial(Projector, policy=policy)


#: The stateful checker, pointed at the reference projector; pytest runs it as a test.
#: Each program draws the policy the projector follows and is judged by: a preset (half the
#: programs, ~80 per preset under the ci profile), or every knob drawn.  test_exhaustive.py
#: adds every session to 6 events under every preset.
TestReferenceMachine = contract_machine(project, incremental=Projector, policies=policies(), follows=_following).TestCase

#: Generated logs checked one by one: half the ci profile's 1,000 each, as the machine above judges
#: 1,000 programs of the same kind (the suite must stay under 10 minutes).
HALF = settings(max_examples=500)


@HALF
@given(session_logs(max_events=60))
def test_reference_satisfies_the_contract_on_generated_logs(log: tuple[Event, ...]) -> None:
    assert check_session(log, project, incremental=Projector) == []


@HALF
@given(session_logs(max_events=60))
def test_reference_reports_the_same_fates_as_the_model(log: tuple[Event, ...]) -> None:
    _, _, fates = project_with_repairs(log)
    assert fates == ledger_of(log).fates


@pytest.mark.parametrize("name", ["late_result_after_compaction_dropped", "late_result_moved_up", "half_call_sent"])
def test_a_projector_that_loses_track_of_a_line_reports_another_fate(name: str) -> None:
    """The fate comparison above can fail: these mutants misreport on their regression logs."""
    log = load_log(str(Path(__file__).parent / "regressions" / f"{name}.jsonl"))
    assert fed(log, MUTANTS[name].cls).fates() != ledger_of(log).fates


@HALF
@given(session_logs(max_events=60))
def test_every_repair_names_a_log_line(log: tuple[Event, ...]) -> None:
    _, repairs, _ = project_with_repairs(log)
    assert all(1 <= r.line <= len(log) for r in repairs)


def test_run_machine_accepts_a_profile() -> None:
    run_machine(contract_machine(project, incremental=Projector), "ci", max_examples=5)
