"""The reference projector against the whole contract, on every log the model can produce."""

from __future__ import annotations

from hypothesis import given

from ctxref.projector import Projector, project, project_with_repairs
from ctxspec.checker import contract_machine, run_machine
from ctxspec.contract import check_session
from ctxspec.events import Event
from ctxspec.ledger import ledger_of
from ctxspec.strategies import session_logs

#: The stateful checker, pointed at the reference projector; pytest runs it as a test.
TestReferenceMachine = contract_machine(project, incremental=Projector).TestCase


@given(session_logs(max_events=60))
def test_reference_satisfies_the_contract_on_generated_logs(log: tuple[Event, ...]) -> None:
    assert check_session(log, project, incremental=Projector) == []


@given(session_logs(max_events=60))
def test_reference_reports_the_same_fates_as_the_model(log: tuple[Event, ...]) -> None:
    _, _, fates = project_with_repairs(log)
    assert fates == ledger_of(log).fates


@given(session_logs(max_events=60))
def test_every_repair_names_a_log_line(log: tuple[Event, ...]) -> None:
    _, repairs, _ = project_with_repairs(log)
    assert all(1 <= r.line <= len(log) for r in repairs)


def test_run_machine_accepts_a_profile() -> None:
    run_machine(contract_machine(project, incremental=Projector), "ci", max_examples=5)
