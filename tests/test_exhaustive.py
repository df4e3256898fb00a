"""Bounded-exhaustive checking (``ctxspec.exhaustive``) and the shortest counterexample per mutant.

* The reference projector passes the whole contract on every abstract session
  of at most :data:`REFERENCE_LENGTH` events (2 slots, :func:`concretize`'s log
  per session: 23,696 sessions, 23,696 logs), and on every faithful
  concretization variant (reused ids, any compaction cut, any undo count) up
  to :data:`VARIANT_LENGTH` events (3,139 sessions, 6,247 logs).
* For every mutant, iterative deepening over the concretized enumeration finds
  a shortest failing session; its length must equal the committed
  ``tests/shortest/<name>.jsonl``, which must still break the mutant (a rule
  in ``mutant.rules``) and pass the reference; and it is no longer than the
  Hypothesis counterexample in ``tests/regressions/<name>.jsonl``.  Lengths
  count the events after ``session.meta``.

``first_parallel_result_only_on_resume`` needs three calls in one reply (two
answered, one still open at the resume), which 2 slots cannot declare at any
length; so it is searched with 3 slots, and with :data:`CANONICAL`
concretizations only, in 2 processes, to keep the run short (~12 s; the search
over every variant finds the same 6-event log after checking 207,481 logs in
~46 s in 1 process, ~36 s in 2: ``benchmarks/bench_explore.py``).  The others: 2 slots, every variant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxspec.abstract import AEvent
from ctxspec.contract import check_session
from ctxspec.events import Assistant, Compaction, dumps_log, load_log
from ctxspec.exhaustive import explore_contract, shortest_counterexample
from ctxspec.explore import ALL_VARIANTS, CANONICAL, Variants, concretizations, concretize, sessions
from ctxspec.state import validate_log

HERE = Path(__file__).parent
SHORTEST = HERE / "shortest"
REGRESSIONS = HERE / "regressions"

REFERENCE_LENGTH = 5
VARIANT_LENGTH = 4
MAX_LENGTH = 6
#: Slots each mutant is searched with (2 unless listed).
SLOTS = {"first_parallel_result_only_on_resume": 3}
#: Concretizations each mutant is searched over (every variant unless listed).
VARIANTS: dict[str, Variants] = {"first_parallel_result_only_on_resume": CANONICAL}
WORKERS = {"first_parallel_result_only_on_resume": 2}


def _events(log: tuple[object, ...] | list[object]) -> int:
    return len(log) - 1  # session.meta is not an event of the session


def test_the_reference_passes_every_session_up_to_the_bound() -> None:
    ticks: list[tuple[int, int]] = []
    report = explore_contract(REFERENCE_LENGTH, project, incremental=Projector, progress=lambda d, t: ticks.append((d, t)))
    assert report.ok, "\n\n".join(f.jsonl() + "\n".join(map(str, f.violations)) for f in report.failures)
    assert (report.sessions, report.concretized, report.checked) == (23_696, 23_696, 23_696)
    assert ticks[-1] == (23_696, 23_696)
    assert all(a <= b for (a, _), (b, _) in zip(ticks, ticks[1:]))


def test_the_reference_passes_every_concretization_variant() -> None:
    report = explore_contract(VARIANT_LENGTH, project, incremental=Projector, variants=ALL_VARIANTS)
    assert report.ok, "\n\n".join(f.jsonl() + "\n".join(map(str, f.violations)) for f in report.failures)
    assert (report.sessions, report.concretized, report.checked) == (3_139, 3_139, 6_247)


def test_workers_share_the_sessions_and_find_the_same_failures() -> None:
    mutant = MUTANTS["steer_inside_block"]
    one = explore_contract(4, mutant.project, incremental=mutant.cls, keep=5)
    two = explore_contract(4, mutant.project, incremental=mutant.cls, keep=5, workers=2)
    assert (one.sessions, one.checked, one.failed) == (two.sessions, two.checked, two.failed) == (3_139, 3_139, one.failed)
    assert one.failed > 0
    assert [f.log for f in one.failures] == [f.log for f in two.failures]


def test_canonical_variant_is_concretize_when_faithful() -> None:
    unfaithful = 0
    for s in sessions(4, 2):
        logs = list(concretizations(s.trace, 2, variants=CANONICAL))
        if logs:
            assert logs == [concretize(s.trace, 2)]
        else:
            unfaithful += 1
        every = list(concretizations(s.trace, 2))
        assert every[: len(logs)] == logs
        assert len({dumps_log(log) for log in every}) == len(every)
        for log in every:
            assert validate_log(log) is s.state.phase
    assert unfaithful == 0


def test_variants_reuse_ids_and_cut_inside_an_exchange() -> None:
    trace = (AEvent("turn.prompt"), AEvent("step.begin"), AEvent("assistant", (0,)), AEvent("turn.cancel"), AEvent("compaction"))
    lasts = [log[-1] for log in concretizations(trace, 2)]
    cuts = sorted(e.upto for e in lasts if isinstance(e, Compaction))
    assert len(cuts) == len(lasts)
    assert cuts == [1, 2, 3, 4]  # upto 5 would summarize the exchange: not compaction(())
    two = (AEvent("turn.prompt"), AEvent("step.begin"), AEvent("assistant", (0, 1)))
    replies = [log[-1] for log in concretizations(two, 2)]
    ids = {tuple(c.id for c in e.calls) for e in replies if isinstance(e, Assistant)}
    assert ids == {("call_1", "call_2"), ("call_1", "call_1")}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_shortest_counterexample(name: str) -> None:
    mutant = MUTANTS[name]
    committed = load_log(str(SHORTEST / f"{name}.jsonl"))
    validate_log(committed)
    broken = {v.rule for v in check_session(committed, mutant.project, incremental=mutant.cls)}
    assert broken & mutant.rules, f"{name} no longer fails its shortest log: {broken}"
    assert check_session(committed, project, incremental=Projector) == []

    found = shortest_counterexample(
        mutant.project, incremental=mutant.cls, rules=mutant.rules, max_length=MAX_LENGTH,
        slots=SLOTS.get(name, 2),
        variants=VARIANTS.get(name, ALL_VARIANTS),
        workers=WORKERS.get(name, 1),
    )
    assert found is not None, f"{name}: no counterexample of <= {MAX_LENGTH} events"
    assert found.length == _events(list(committed)), dumps_log(found.log)
    assert check_session(found.log, project, incremental=Projector) == []

    hypothesis = load_log(str(REGRESSIONS / f"{name}.jsonl"))
    assert found.length <= _events(list(hypothesis))


def test_every_shortest_file_belongs_to_a_mutant() -> None:
    assert {p.stem for p in SHORTEST.glob("*.jsonl")} == set(MUTANTS)
