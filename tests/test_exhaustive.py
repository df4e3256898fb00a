"""Bounded-exhaustive checking (``ctxspec.exhaustive``) and the shortest counterexample per mutant.

Only sessions that end at a ``step.begin`` are checked: a request is judged
only where it is sent, and a log that ends elsewhere judges what its prefix
up to its last ``step.begin`` judges, a shorter session of the same
enumeration.

* The reference projector passes the whole contract on every abstract session
  of at most :data:`REFERENCE_LENGTH` events (2 slots, :func:`concretize`'s log
  per session: 181,929 sessions, 5,355 of them ending at a request), on every
  faithful concretization variant (reused ids, any compaction cut, any undo
  count) up to the same length (15,668 logs), and under every preset, each
  to :data:`REFERENCE_LENGTH` (the projector following the preset).
* For every mutant, iterative deepening over the concretized enumeration finds
  a shortest failing session; its length must equal the committed
  ``tests/shortest/<name>.jsonl``, which must still break the mutant (a rule
  in ``mutant.rules``) and pass the reference; and it is no longer than the
  Hypothesis counterexample in ``tests/regressions/<name>.jsonl``.  Lengths
  count the events after ``session.meta``.

``first_parallel_result_only_on_resume`` needs three calls in one reply (two
answered, one still open at the resume), which 2 slots cannot declare at any
length; it is searched with 3 slots, :data:`CANONICAL` concretizations only.
Four mutants' shortest sessions are longer than the suite can afford to
search for in full (:data:`BOUND`): 7 events for three of them, 8 for
``first_parallel_result_only_on_resume``.  For those the suite
proves that no session of at most 6 events breaks them, and checks that the
committed log, which the full search found, breaks the mutant and not the
reference (``benchmarks/bench_explore.py --max-length 8`` redoes the search).

Runs and searches go along the enumeration tree (``ctxspec.treewise``, each
request judged once).  The tree-wise run is compared with the per-session
run (``tree=False``: ``check_session`` on every session) failing log by
failing log, and the comparison is shown to fail on walks that forget what
came before (the previous request's messages, the replay check, an earlier
failure), with projectors built to need each.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings

from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxspec.abstract import AEvent
from ctxspec.contract import REFERENCE, Incremental, Projector as ProjectorFn, SessionChecker, Violation, check_session
from ctxspec.policy import PRESETS
from ctxspec.events import (
    Assistant, Compaction, Event, Resume, SessionMeta, StepBegin, StepEnd, ToolCall, TurnCancel, TurnPrompt, dumps_log, load_log,
)
from ctxspec.messages import Message, ToolMessage
from ctxspec.strategies import session_logs
from ctxspec.treewise import judge_request
from ctxspec.exhaustive import ExploreReport, explore_contract, shortest_counterexample
from ctxspec.explore import ALL_VARIANTS, CANONICAL, Variants, concretizations, concretize, sessions
from ctxspec.state import validate_log

HERE = Path(__file__).parent
SHORTEST = HERE / "shortest"
REGRESSIONS = HERE / "regressions"

REFERENCE_LENGTH = 6
#: Mutants whose shortest session the suite does not search for in full: the longest length it exhausts.
BOUND = {
    "first_parallel_result_only_on_resume": 6,
    "compaction_splits_exchange": 6,
    "late_result_after_compaction_dropped": 6,
    "orphan_result_kept_after_trim": 6,
}
#: Slots each mutant is searched with (2 unless listed).
SLOTS = {"first_parallel_result_only_on_resume": 3}
#: Concretizations each mutant is searched over (every variant unless listed).
VARIANTS: dict[str, Variants] = {"first_parallel_result_only_on_resume": CANONICAL}
#: Processes per search: the 7-event searches check ~35,000 logs each.
WORKERS = {
    "first_parallel_result_only_on_resume": 2,
    "compaction_splits_exchange": 2,
    "late_result_after_compaction_dropped": 2,
    "orphan_result_kept_after_trim": 2,
}


#: Mutants whose shortest counterexample is also searched for per session (one of 5 events, one of 6).
SEARCHED_BOTH_WAYS = frozenset({"duplicate_id_kept", "steer_inside_block"})


def _events(log: tuple[object, ...] | list[object]) -> int:
    return len(log) - 1  # session.meta is not an event of the session


def test_the_reference_passes_every_session_up_to_the_bound() -> None:
    ticks: list[tuple[int, int]] = []
    report = explore_contract(REFERENCE_LENGTH, project, incremental=Projector, progress=lambda d, t: ticks.append((d, t)))
    assert report.ok, "\n\n".join(f.jsonl() + "\n".join(map(str, f.violations)) for f in report.failures)
    assert (report.sessions, report.concretized, report.checked) == (181_929, 5_355, 5_355)
    assert ticks[-1] == (181_929, 181_929)
    assert all(a <= b for (a, _), (b, _) in zip(ticks, ticks[1:]))


def test_the_reference_passes_every_concretization_variant() -> None:
    report = explore_contract(REFERENCE_LENGTH, project, incremental=Projector, variants=ALL_VARIANTS)
    assert report.ok, "\n\n".join(f.jsonl() + "\n".join(map(str, f.violations)) for f in report.failures)
    assert (report.sessions, report.concretized, report.checked) == (181_929, 5_355, 15_668)


@pytest.mark.parametrize("name", sorted(set(PRESETS) - {"reference"}))
def test_the_reference_passes_every_session_under_every_preset(name: str) -> None:
    policy = PRESETS[name]
    report = explore_contract(REFERENCE_LENGTH, partial(project, policy=policy), incremental=partial(Projector, policy=policy), policy=policy)
    assert report.ok, "\n\n".join(f.jsonl() + "\n".join(map(str, f.violations)) for f in report.failures)
    assert report.checked == 5_355


def test_workers_share_the_sessions_and_find_the_same_failures() -> None:
    mutant = MUTANTS["steer_inside_block"]
    one = explore_contract(6, mutant.project, incremental=mutant.cls, keep=5)
    two = explore_contract(6, mutant.project, incremental=mutant.cls, keep=5, workers=2)
    assert (one.sessions, one.checked, one.failed) == (two.sessions, two.checked, two.failed) == (181_929, 5_355, one.failed)
    assert one.failed > 0
    assert [f.log for f in one.failures] == [f.log for f in two.failures]


def _found(report: ExploreReport) -> tuple[object, ...]:
    """Everything a run reports: counts, and every failing log with its trace and findings."""
    failures = [(f.trace, f.log, f.violations) for f in report.failures]
    return report.sessions, report.concretized, report.checked, report.failed, failures


#: Where the tree-wise run is compared with the per-session run: (projector, length, every variant or not).
#: The reference (no failure: the counts) both ways, and the mutants that fail at that length: each
#: failing log and its findings are compared (the runs where both find nothing add little but time).
COMPARED = [
    ("reference", 5, True),
    ("reference", 6, False),
    *[(name, 5, True) for name in ("duplicate_id_kept", "half_call_sent", "nondeterministic_synthetic_ids", "prompt_deferred_forever")],
    *[(name, 6, False) for name in ("steer_inside_block", "late_result_moved_up")],
]


@pytest.mark.parametrize(("name", "length", "every"), COMPARED)
def test_the_tree_wise_run_finds_what_the_per_session_run_finds(name: str, length: int, every: bool) -> None:
    """Judging each request once along the tree reports the same failing logs as check_session per session.

    Every failing log is kept (``keep``), so the lists compare in full.
    """
    projector, cls = (project, Projector) if name == "reference" else (MUTANTS[name].project, MUTANTS[name].cls)
    variants = ALL_VARIANTS if every else None
    tree = explore_contract(length, projector, incremental=cls, variants=variants, keep=1_000_000)
    per_session = explore_contract(length, projector, incremental=cls, variants=variants, keep=1_000_000, tree=False)
    assert name == "reference" or tree.failed > 0
    assert _found(tree) == _found(per_session)


def test_the_tree_wise_run_keeps_the_first_failures_in_enumeration_order() -> None:
    """With a small ``keep``, both runs keep the same failures: the first ones, shortest first."""
    mutant = MUTANTS["steer_inside_block"]
    tree = explore_contract(6, mutant.project, incremental=mutant.cls, keep=7)
    every = explore_contract(6, mutant.project, incremental=mutant.cls, keep=1_000_000)
    assert tree.failed == every.failed > 7
    assert [f.log for f in tree.failures] == [f.log for f in every.failures[:7]]
    assert [f.length for f in tree.failures] == sorted(f.length for f in tree.failures)


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

    length = _events(list(committed))
    bound = BOUND.get(name, length)
    found = shortest_counterexample(
        mutant.project, incremental=mutant.cls, rules=mutant.rules, max_length=bound,
        slots=SLOTS.get(name, 2),
        variants=VARIANTS.get(name, ALL_VARIANTS),
        workers=WORKERS.get(name, 1),
    )
    if bound < length:  # the suite proves only that nothing shorter than the bound breaks it
        assert found is None, dumps_log(found.log)
    else:
        assert found is not None, f"{name}: no counterexample of <= {length} events"
        assert found.length == length, dumps_log(found.log)
        assert check_session(found.log, project, incremental=Projector) == []
        if name in SEARCHED_BOTH_WAYS:  # the search along the tree returns the log the per-session search does
            per_session = shortest_counterexample(
                mutant.project, incremental=mutant.cls, rules=mutant.rules, max_length=bound, slots=SLOTS.get(name, 2),
                variants=VARIANTS.get(name, ALL_VARIANTS), tree=False,
            )
            assert per_session is not None and per_session.log == found.log

    hypothesis = load_log(str(REGRESSIONS / f"{name}.jsonl"))
    assert length <= _events(list(hypothesis))


def test_every_shortest_file_belongs_to_a_mutant() -> None:
    assert {p.stem for p in SHORTEST.glob("*.jsonl")} == set(MUTANTS)


def _drop_the_last_message(log: Sequence[Event]) -> list[Message]:
    """Fails at every request (a prompt goes missing), so every request below one inherits its failure."""
    return project(log)[:-1]


def _closures_numbered(log: Sequence[Event]) -> list[Message]:
    """Each request on its own passes, but a closure's words change at the next request: C9 alone."""
    n = sum(e.type == "step.begin" for e in log)
    return [replace(m, content=f"{m.content} (request {n})") if isinstance(m, ToolMessage) and m.synthetic else m for m in project(log)]


def _resumes_counted(log: Sequence[Event]) -> list[Message]:
    """A closure says how many resumes came before: removing an idle one changes the request (C11 at the end)."""
    n = sum(e.type == "resume" for e in log)
    return [replace(m, content=f"{m.content} (after {n} resumes)") if isinstance(m, ToolMessage) and m.synthetic else m for m in project(log)]


#: Projectors whose verdicts depend on what earlier requests got (the walk must carry it down).
ALONG: dict[str, ProjectorFn] = {"drop_the_last_message": _drop_the_last_message, "closures_numbered": _closures_numbered, "resumes_counted": _resumes_counted}


def _verdicts(log: Sequence[Event], projector: ProjectorFn, incremental: Callable[[], Incremental] | None = None) -> list[tuple[int, object, object]]:
    """At each request of ``log``: the verdict judged once along the log, and check_session's on the prefix."""
    out: list[tuple[int, object, object]] = []
    sent: tuple[Message, ...] | None = None
    failed: tuple[Violation, ...] = ()
    for k, event in enumerate(log, 1):
        if event.type != "step.begin":
            continue
        sent, failed, verdict = judge_request(log[:k], sent, failed, projector, incremental=incremental, policy=REFERENCE)
        out.append((k, list(verdict), check_session(log[:k], projector, incremental=incremental)))
    return out


@pytest.mark.parametrize("name", [*sorted(ALONG), "reference", *sorted(MUTANTS)])
@settings(max_examples=40)
@given(log=session_logs(max_events=24))
def test_judging_each_request_once_gives_check_sessions_verdict(name: str, log: tuple[Event, ...]) -> None:
    """What the tree-wise run relies on, over generated logs: a request judged once, given what
    the earlier requests got, has the verdict check_session gives on the log up to it."""
    projector, cls = (project, Projector) if name == "reference" else (ALONG[name], None) if name in ALONG else (MUTANTS[name].project, MUTANTS[name].cls)
    for k, once, per_session in _verdicts(log, projector, cls):
        assert once == per_session, f"request at line {k}"


_CALL = ToolCall(id="call_1", name="Shell", args='{"n": 1}')
#: A closure sent at two requests (C9 compares them), and an idle resume before the last (C11).
_TWO_REQUESTS = (
    SessionMeta(), TurnPrompt(text="p"), StepBegin(), Assistant(text="", calls=(_CALL,)), TurnCancel(), Resume(),
    TurnPrompt(text="q"), StepBegin(), Assistant(text="ok"), StepEnd(finish_reason="stop"), StepBegin(),
)


def test_the_comparison_catches_a_walk_that_forgets_what_came_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparisons above can fail: each piece of what the walk carries down, left out, is caught."""
    from ctxspec import treewise

    assert all(once == per for _, once, per in _verdicts(_TWO_REQUESTS, _closures_numbered))
    assert [once for _, once, _ in _verdicts(_TWO_REQUESTS, _closures_numbered)][-1][0].rule == "C9"
    assert [once for _, once, _ in _verdicts(_TWO_REQUESTS, _resumes_counted)][-1][0].rule == "C11"
    right = explore_contract(5, _drop_the_last_message, keep=1_000_000)
    judge = treewise.judge_request

    with monkeypatch.context() as m:  # the messages the last request got are not handed down: no C9
        m.setattr(treewise, "SessionChecker", type("Forgets", (SessionChecker,), {"advance": lambda self, event, sent=None: SessionChecker.advance(self, event)}))
        assert any(once != per for _, once, per in _verdicts(_TWO_REQUESTS, _closures_numbered))
    with monkeypatch.context() as m:  # the replay check at the end is left out: no C11
        m.setattr(treewise, "SessionChecker", type("NoReplay", (SessionChecker,), {"finish": lambda self: []}))
        assert any(once != per for _, once, per in _verdicts(_TWO_REQUESTS, _resumes_counted))
    with monkeypatch.context() as m:  # an earlier failure is not handed down: the requests below judge on
        m.setattr(treewise, "judge_request", lambda log, sent, failed, *a, **k: judge(log, sent, (), *a, **k))
        wrong = explore_contract(5, _drop_the_last_message, keep=1_000_000)
    assert right.failed > 0 and _found(wrong) != _found(right)

