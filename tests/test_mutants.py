"""Every mutant in the catalogue is killed, and its shrunk counterexample is kept.

The kill test runs the stateful checker with the ``ci`` profile (derandomized)
whatever profile the rest of the suite uses: that is the bar the model must
clear.  The regression test replays the counterexample committed in
``tests/regressions/<mutant>.jsonl`` (written by ``ctxcontract counterexample
--mutant NAME -o FILE``): the mutant must still break one of its rules there,
and the reference projector must not break any.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxspec.checker import find_counterexample
from ctxspec.contract import check_session
from ctxspec.events import load_log
from ctxspec.state import validate_log

REGRESSIONS = Path(__file__).parent / "regressions"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_killed_by_the_ci_profile(name: str) -> None:
    mutant = MUTANTS[name]
    found = find_counterexample(mutant.project, incremental=mutant.cls, profile="ci")
    assert found is not None, f"mutant {name} survived: a hole in the model"
    assert {v.rule for v in found.violations} & mutant.rules, found
    assert check_session(found.log, project, incremental=Projector) == []


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_regression(name: str) -> None:
    mutant = MUTANTS[name]
    log = load_log(str(REGRESSIONS / f"{name}.jsonl"))
    validate_log(log)
    broken = {v.rule for v in check_session(log, mutant.project, incremental=mutant.cls)}
    assert broken & mutant.rules, f"{name} no longer fails its regression log: {broken}"
    assert check_session(log, project, incremental=Projector) == []


def test_every_regression_file_belongs_to_a_mutant() -> None:
    assert {p.stem for p in REGRESSIONS.glob("*.jsonl")} == set(MUTANTS)
